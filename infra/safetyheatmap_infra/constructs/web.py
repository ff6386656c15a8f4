"""The web service: Fargate tasks behind Cloud Map, reached only through the API's VPC link."""

from __future__ import annotations

from aws_cdk import CfnParameter, Duration, Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from ..config import Config
from .common import WEB_PORT, Part
from .compute import Compute, app_environment, roles, task_definition
from .data import Data
from .network import Network

HEALTHZ = (
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + "
    "os.environ.get('SAFETYHEATMAP_PORT', '8000') + '/healthz', timeout=3)"
)


class Web(Part):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        network: Network,
        data: Data,
        compute: Compute,
        image_tag: CfnParameter,
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        task_role, execution_role = roles(self, "Web")
        self.task_role = task_role
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="EnqueueReports",
                actions=["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                resources=[data.queue.queue_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="DeadLetterStatus",
                actions=["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                resources=[data.dlq.queue_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadGrids",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:DescribeTable",
                ],
                resources=[data.grids_table.table_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReportsReadiness",
                actions=["dynamodb:DescribeTable"],
                resources=[data.reports_table.table_arn],
            )
        )

        self.logs = self.log_group("WebLogs", "web")
        definition = task_definition(
            self, "Web", config.web_cpu, config.web_memory, task_role, execution_role
        )
        environment = app_environment(self, data) | {
            "SAFETYHEATMAP_HOST": "0.0.0.0",  # noqa: S104 - container port, reached via the VPC link
            "SAFETYHEATMAP_PORT": str(WEB_PORT),
            "SAFETYHEATMAP_WEB_WORKERS": str(config.web_workers),
            "SAFETYHEATMAP_WEB_WORKER_CLASS": config.web_worker_class,
            "SAFETYHEATMAP_WEB_THREADS": str(config.web_threads),
            # Requests arrive from the API Gateway VPC link's addresses inside the VPC: trust
            # its X-Forwarded-For there (per-client rate limits), and nowhere else.
            "SAFETYHEATMAP_TRUSTED_PROXIES": network.vpc.vpc_cidr_block,
        }
        # One key for every web task: a client's rate-limit bucket key and daily submitter
        # pseudonym must not depend on which task answers it (the privacy rule counts each
        # submitter once), nor change when a task is replaced. Never rotated: a new key would
        # make every client a new submitter mid-day.
        self.client_hash_key = secretsmanager.Secret(
            self,
            "ClientHashKey",
            description="SAFETYHEATMAP_CLIENT_HASH_KEY: rate-limit keys and submitter pseudonyms",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
        )
        container = definition.add_container(
            "web",
            image=ecs.ContainerImage.from_ecr_repository(
                compute.web_repository, tag=image_tag.value_as_string
            ),
            essential=True,
            environment=environment,
            secrets={
                "SAFETYHEATMAP_CLIENT_HASH_KEY": ecs.Secret.from_secrets_manager(
                    self.client_hash_key
                )
            },
            port_mappings=[ecs.PortMapping(container_port=WEB_PORT, name="http")],
            readonly_root_filesystem=True,
            stop_timeout=Duration.seconds(30),
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", HEALTHZ],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(20),
            ),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="web",
                log_group=self.logs,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        self.container = container
        self._service(network, compute, definition, container)

    def _service(
        self,
        network: Network,
        compute: Compute,
        definition: ecs.FargateTaskDefinition,
        container: ecs.ContainerDefinition,
    ) -> None:
        config = self.config
        strategies = [ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=1, weight=1)]
        if config.web_spot:
            strategies = [
                ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", base=1, weight=1)
            ]
        self.service = ecs.FargateService(
            self,
            "WebService",
            service_name=config.web_service_name,
            cluster=compute.cluster,
            task_definition=definition,
            # desired_count left out: CloudFormation then keeps the autoscaled count on updates.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            capacity_provider_strategies=strategies,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[network.web_sg],
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
            cloud_map_options=ecs.CloudMapOptions(
                name="web",
                cloud_map_namespace=compute.namespace,
                dns_record_type=servicediscovery.DnsRecordType.SRV,
                dns_ttl=Duration.seconds(10),
                container=container,
                container_port=WEB_PORT,
            ),
        )
        self.service.node.add_dependency(compute.capacity_providers)
        scaling = self.service.auto_scale_task_count(
            min_capacity=config.web_min_tasks, max_capacity=config.web_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "WebCpu",
            policy_name=self.flat_name("WebService", "TaskCount", "Target", "WebCpu"),
            target_utilization_percent=60,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
