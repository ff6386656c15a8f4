"""Base stack: what must exist before the first image is built.

* ECR repositories for the web and worker images (scan on push, immutable tags, lifecycle).
* GitHub Actions OIDC trust (no stored keys) and two roles:
  - the *deploy* role, for workflow jobs on the main branch: push images, roll the two ECS
    services to a new task-definition revision, wait for stability;
  - the *infra* role, only for jobs in the GitHub environment that requires a reviewer: it may do
    nothing but assume the CDK bootstrap roles, i.e. run ``cdk diff`` / ``cdk deploy``.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import Config

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# Every IAM statement whose resource is "*" carries one of these reasons (tests enforce it).
WILDCARD_REASONS = {
    "ecr:GetAuthorizationToken": "ECR login tokens are account-wide; the action has no resource.",
    "ecs:RegisterTaskDefinition": "ECS RegisterTaskDefinition supports no resource-level scope.",
    "ecs:DescribeTaskDefinition": "ECS DescribeTaskDefinition supports no resource-level scope.",
}


class BaseStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        Tags.of(self).add("project", "safetyheatmap")

        self.web_repository = self._repository("WebRepository", config.web_repository_name)
        self.worker_repository = self._repository("WorkerRepository", config.worker_repository_name)

        provider_arn = config.github_oidc_provider_arn
        if not provider_arn:
            provider = iam.OidcProviderNative(
                self,
                "GithubOidcProvider",
                url=GITHUB_OIDC_URL,
                client_ids=["sts.amazonaws.com"],
                removal_policy=RemovalPolicy.RETAIN,
            )
            provider_arn = provider.oidc_provider_arn

        self.deploy_role = iam.Role(
            self,
            "GithubDeployRole",
            description="GitHub Actions on the main branch: push images, roll ECS services.",
            assumed_by=self._github_principal(
                provider_arn, f"repo:{config.github_repo}:ref:refs/heads/{config.github_branch}"
            ),
            max_session_duration=Duration.hours(1),
        )
        self._grant_deploy(self.deploy_role)

        self.infra_role = iam.Role(
            self,
            "GithubInfraRole",
            description="GitHub Actions in the approved infrastructure environment: cdk deploy.",
            assumed_by=self._github_principal(
                provider_arn,
                f"repo:{config.github_repo}:environment:{config.github_infra_environment}",
            ),
            max_session_duration=Duration.hours(2),
        )
        self.infra_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCdkBootstrapRoles",
                actions=["sts:AssumeRole", "sts:TagSession"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/"
                    f"cdk-{config.cdk_qualifier}-*-{self.account}-{self.region}"
                ],
            )
        )

        CfnOutput(
            self,
            "DeployRoleArn",
            value=self.deploy_role.role_arn,
            description="GitHub variable AWS_DEPLOY_ROLE_ARN",
        )
        CfnOutput(
            self,
            "InfraRoleArn",
            value=self.infra_role.role_arn,
            description="GitHub variable AWS_INFRA_ROLE_ARN (environment: infrastructure)",
        )
        CfnOutput(self, "WebRepositoryUri", value=self.web_repository.repository_uri)
        CfnOutput(self, "WorkerRepositoryUri", value=self.worker_repository.repository_uri)

    def _repository(self, construct_id: str, name: str) -> ecr.Repository:
        return ecr.Repository(
            self,
            construct_id,
            repository_name=name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="drop untagged layers of failed pushes",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(1),
                    rule_priority=1,
                ),
                ecr.LifecycleRule(
                    description="keep the last 30 images: rollback targets",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=30,
                    rule_priority=2,
                ),
            ],
        )

    @staticmethod
    def _github_principal(provider_arn: str, subject: str) -> iam.IPrincipal:
        return iam.WebIdentityPrincipal(
            provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                    f"{GITHUB_OIDC_HOST}:sub": subject,
                }
            },
        )

    def _grant_deploy(self, role: iam.Role) -> None:
        config = self.config
        for repository in (self.web_repository, self.worker_repository):
            repository.grant_pull_push(role)
            repository.grant(role, "ecr:DescribeImages", "ecr:DescribeImageScanFindings")
        service_arns = [
            f"arn:{self.partition}:ecs:{self.region}:{self.account}:service/"
            f"{config.cluster_name}/{name}"
            for name in (config.web_service_name, config.worker_service_name)
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RollServices",
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=service_arns,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterTaskDefinitions",
                # Reason: WILDCARD_REASONS (no resource-level permissions for these actions).
                actions=["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CdkDiffReadOnly",
                # The CDK bootstrap lookup role is read-only: enough for `cdk diff` before the
                # approval; deploying needs the infra role.
                actions=["sts:AssumeRole"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/"
                    f"cdk-{config.cdk_qualifier}-lookup-role-{self.account}-{self.region}"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheAppTaskRoles",
                actions=["iam:PassRole"],
                resources=[f"arn:{self.partition}:iam::{self.account}:role{config.role_path}*"],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
