"""The SafetyHeatmap service stack.

Traffic: client -> API Gateway HTTP API (throttled, access-logged) -> VPC link -> Cloud Map SRV
record -> web task (Fargate) -> SQS queue -> worker tasks (Fargate Spot, 0..N) -> DynamoDB.

Money: public subnets only (no NAT gateway), no load balancer (the HTTP API's VPC link and Cloud
Map are free or cents), the worker runs only while there is work, DynamoDB and the API are paid
per request. docs/DEPLOY.md has the cost table.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsii
from aws_cdk import (
    CfnCondition,
    CfnOutput,
    CfnParameter,
    CfnResource,
    Duration,
    Fn,
    RemovalPolicy,
    Size,
    Stack,
    Tags,
)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .celery_message import roll_windows_body
from .config import Config

WEB_PORT = 8000
METRIC_NAMESPACE = "SafetyHeatmap"
QUEUE_SCALER_CODE = Path(__file__).parent / "queue_scaler"
ROLL_GATE_CODE = Path(__file__).parent / "roll_gate"
HEALTHZ = (
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + "
    "os.environ.get('SAFETYHEATMAP_PORT', '8000') + '/healthz', timeout=3)"
)
# Every IAM statement whose resource is "*" carries one of these reasons (tests enforce it).
WILDCARD_REASONS = {
    "ecr:GetAuthorizationToken": "ECR login tokens are account-wide; the action has no resource.",
    "application-autoscaling:DescribeScalableTargets": (
        "Describe* of Application Auto Scaling supports no resource-level scope."
    ),
}


class AppStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        Tags.of(self).add("project", "safetyheatmap")

        self.image_tag = CfnParameter(
            self,
            "ImageTag",
            type="String",
            description="Tag (the git commit SHA) of both images to run; CI passes it.",
            allowed_pattern="^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        )
        self.domain_name = CfnParameter(
            self,
            "DomainName",
            type="String",
            default="",
            description="Optional custom domain of the API, e.g. heatmap.example.org.",
        )
        self.certificate_arn = CfnParameter(
            self,
            "CertificateArn",
            type="String",
            default="",
            description="ACM certificate (same region) for DomainName; empty without a domain.",
        )

        self._network()
        self._data()
        self._cluster()
        self._web()
        self._api()
        self._worker()
        self._worker_scaling()
        self._roll_windows_schedule()
        self._alarms()
        self._dashboard()

    # ------------------------------------------------------------------------------------------
    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=f"/{self.config.prefix}/{name}",
            retention=_retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _cdk_handler_logs(self) -> None:
        """Give CDK's own Lambda handlers a log group with retention.

        restrict_default_security_group adds a CDK-provided function. Left alone, it would log to
        /aws/lambda/<name>, a group that Lambda creates on the first run and that never expires.
        Its role already has AWSLambdaBasicExecutionRole, which may write to any group.
        """
        group = self._log_group("CdkHandlerLogs", "cdk-handlers")
        for child in self.node.children:
            if child.node.id.startswith("Custom::") and child.node.id.endswith("Provider"):
                handler = child.node.try_find_child("Handler")
                if isinstance(handler, CfnResource):
                    handler.add_property_override(
                        "LoggingConfig", {"LogGroup": group.log_group_name}
                    )

    def _network(self) -> None:
        # Public subnets only: no NAT gateway (~$32/month each). Tasks get a public IP for AWS
        # APIs; their security groups admit nothing from the internet.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.42.0.0/16"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                )
            ],
            restrict_default_security_group=True,
        )
        self._cdk_handler_logs()
        # Free gateway endpoints: DynamoDB traffic and ECR layer downloads (S3) stay private.
        self.vpc.add_gateway_endpoint(
            "DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
        )
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        flow_logs = self._log_group("FlowLogs", "vpc-flow-rejects")
        self.vpc.add_flow_log(
            "RejectedFlows",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        self.link_sg = ec2.SecurityGroup(
            self,
            "VpcLinkSg",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="API Gateway VPC link: may only reach the web tasks",
        )
        self.web_sg = ec2.SecurityGroup(
            self,
            "WebSg",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Web tasks: HTTP from the VPC link only; HTTPS out to AWS APIs",
        )
        self.worker_sg = ec2.SecurityGroup(
            self,
            "WorkerSg",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Worker tasks: no inbound; HTTPS out to AWS APIs",
        )
        # Inline egress on the link (so no default allow-all rule remains); the matching ingress
        # is a separate resource, or the two groups would reference each other in a cycle.
        self.link_sg.add_egress_rule(
            ec2.Peer.security_group_id(self.web_sg.security_group_id),
            ec2.Port.tcp(WEB_PORT),
            "API Gateway to the web tasks",
        )
        ec2.CfnSecurityGroupIngress(
            self,
            "WebFromVpcLink",
            group_id=self.web_sg.security_group_id,
            source_security_group_id=self.link_sg.security_group_id,
            ip_protocol="tcp",
            from_port=WEB_PORT,
            to_port=WEB_PORT,
            description="HTTP from the API Gateway VPC link only",
        )
        for sg in (self.web_sg, self.worker_sg):
            # SQS, ECR, CloudWatch Logs have public endpoints only (interface endpoints cost
            # ~$7/month each): HTTPS to anywhere is the narrowest rule without a NAT.
            sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")

    def _data(self) -> None:
        config = self.config
        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=config.queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(config.visibility_timeout),
            retention_period=Duration.days(4),
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=config.max_receives
            ),
        )
        self.reports_table = self._table("ReportsTable", config.reports_table_name)
        self.grids_table = self._table("GridsTable", config.grids_table_name)

    def _table(self, construct_id: str, name: str) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _cluster(self) -> None:
        config = self.config
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=config.cluster_name,
            vpc=self.vpc,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED
                if config.container_insights
                else ecs.ContainerInsights.DISABLED
            ),
        )
        # Fargate and Fargate Spot capacity providers, associated here rather than through
        # enable_fargate_capacity_providers (whose association CDK adds at synth time, too late
        # to order the services after it: a service naming FARGATE_SPOT before the association
        # exists fails to create).
        self.capacity_providers = ecs.CfnClusterCapacityProviderAssociations(
            self,
            "CapacityProviders",
            cluster=self.cluster.cluster_name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategy=[
                ecs.CfnClusterCapacityProviderAssociations.CapacityProviderStrategyProperty(
                    capacity_provider="FARGATE", base=1, weight=1
                )
            ],
        )
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self,
            "Namespace",
            name=f"{config.prefix}.internal",
            vpc=self.vpc,
            description="Service discovery for the API Gateway VPC link",
        )
        web_repo_name = config.web_repository_name
        worker_repo_name = config.worker_repository_name
        # Created by the base stack; imported by name so the stacks share no exports.
        self.web_repository = ecr.Repository.from_repository_name(self, "WebRepo", web_repo_name)
        self.worker_repository = ecr.Repository.from_repository_name(
            self, "WorkerRepo", worker_repo_name
        )

    def _app_environment(self) -> dict[str, str]:
        config = self.config
        return {
            "SAFETYHEATMAP_AWS_REGION": self.region,
            "SAFETYHEATMAP_AWS_ENDPOINT_URL": "",
            "SAFETYHEATMAP_QUEUE_NAME": self.queue.queue_name,
            "SAFETYHEATMAP_DLQ_NAME": self.dlq.queue_name,
            "SAFETYHEATMAP_REPORTS_TABLE": self.reports_table.table_name,
            "SAFETYHEATMAP_GRIDS_TABLE": self.grids_table.table_name,
            "SAFETYHEATMAP_VISIBILITY_TIMEOUT": str(config.visibility_timeout),
            "SAFETYHEATMAP_MAX_RECEIVES": str(config.max_receives),
            "SAFETYHEATMAP_LOG_LEVEL": "INFO",
        }

    def _roles(self, name: str) -> tuple[iam.Role, iam.Role]:
        path = self.config.role_path
        task_role = iam.Role(
            self,
            f"{name}TaskRole",
            path=path,
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"SafetyHeatmap {name.lower()} containers: least privilege on data",
        )
        execution_role = iam.Role(
            self,
            f"{name}ExecutionRole",
            path=path,
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"ECS agent for {name.lower()}: pull the image, write the logs",
        )
        return task_role, execution_role

    def _task_definition(
        self, name: str, cpu: int, memory: int, task_role: iam.Role, execution_role: iam.Role
    ) -> ecs.FargateTaskDefinition:
        task_definition = ecs.FargateTaskDefinition(
            self,
            f"{name}TaskDefinition",
            family=f"{self.config.prefix}-{name.lower()}",
            cpu=cpu,
            memory_limit_mib=memory,
            task_role=task_role,
            execution_role=execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        # Root file systems are read-only; /tmp is a per-task scratch volume.
        task_definition.add_volume(name="tmp")
        return task_definition

    # ------------------------------------------------------------------------------------------
    def _web(self) -> None:
        config = self.config
        task_role, execution_role = self._roles("Web")
        self.web_task_role = task_role
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="EnqueueReports",
                actions=["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                resources=[self.queue.queue_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="DeadLetterStatus",
                actions=["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                resources=[self.dlq.queue_arn],
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
                resources=[self.grids_table.table_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReportsReadiness",
                actions=["dynamodb:DescribeTable"],
                resources=[self.reports_table.table_arn],
            )
        )

        self.web_logs = self._log_group("WebLogs", "web")
        task_definition = self._task_definition(
            "Web", config.web_cpu, config.web_memory, task_role, execution_role
        )
        environment = self._app_environment() | {
            "SAFETYHEATMAP_HOST": "0.0.0.0",  # noqa: S104 - container port, reached via the VPC link
            "SAFETYHEATMAP_PORT": str(WEB_PORT),
            "SAFETYHEATMAP_WEB_WORKERS": str(config.web_workers),
            "SAFETYHEATMAP_WEB_WORKER_CLASS": config.web_worker_class,
            "SAFETYHEATMAP_WEB_THREADS": str(config.web_threads),
            # Requests arrive from the API Gateway VPC link's addresses inside the VPC: trust
            # its X-Forwarded-For there (per-client rate limits), and nowhere else.
            "SAFETYHEATMAP_TRUSTED_PROXIES": self.vpc.vpc_cidr_block,
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
        container = task_definition.add_container(
            "web",
            image=ecs.ContainerImage.from_ecr_repository(
                self.web_repository, tag=self.image_tag.value_as_string
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
                log_group=self.web_logs,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        self.web_container = container

        strategies = [ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=1, weight=1)]
        if config.web_spot:
            strategies = [
                ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", base=1, weight=1)
            ]
        self.web_service = ecs.FargateService(
            self,
            "WebService",
            service_name=config.web_service_name,
            cluster=self.cluster,
            task_definition=task_definition,
            # desired_count left out: CloudFormation then keeps the autoscaled count on updates.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            capacity_provider_strategies=strategies,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.web_sg],
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
            cloud_map_options=ecs.CloudMapOptions(
                name="web",
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.SRV,
                dns_ttl=Duration.seconds(10),
                container=container,
                container_port=WEB_PORT,
            ),
        )
        self.web_service.node.add_dependency(self.capacity_providers)
        scaling = self.web_service.auto_scale_task_count(
            min_capacity=config.web_min_tasks, max_capacity=config.web_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "WebCpu",
            target_utilization_percent=60,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )

    def _api(self) -> None:
        config = self.config
        self.vpc_link = apigwv2.VpcLink(
            self,
            "VpcLink",
            vpc=self.vpc,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.link_sg],
        )
        assert self.web_service.cloud_map_service is not None
        self.api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-api",
            description="SafetyHeatmap public API and static frontend",
            create_default_stage=False,
            default_integration=integrations.HttpServiceDiscoveryIntegration(
                "Web",
                self.web_service.cloud_map_service,
                vpc_link=self.vpc_link,
                timeout=Duration.seconds(29),
            ),
        )
        self.access_logs = self._log_group("ApiAccessLogs", "api-access")
        # No client address or user agent: the raw address is never stored (docs/ARCHITECTURE.md,
        # privacy); rate limiting uses a keyed hash of it in the web tier only.
        access_format = {
            "requestId": "$context.requestId",
            "requestTime": "$context.requestTime",
            "method": "$context.httpMethod",
            "path": "$context.path",
            "routeKey": "$context.routeKey",
            "status": "$context.status",
            "protocol": "$context.protocol",
            "responseLength": "$context.responseLength",
            "responseLatency": "$context.responseLatency",
            "integrationLatency": "$context.integrationLatency",
            "integrationStatus": "$context.integrationStatus",
            "integrationError": "$context.integrationErrorMessage",
        }
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit
            ),
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(self.access_logs),
                apigw.AccessLogFormat.custom(json.dumps(access_format)),
            ),
        )

        # Optional custom domain, chosen by stack parameters (no re-synth needed).
        has_domain = CfnCondition(
            self,
            "HasCustomDomain",
            expression=Fn.condition_and(
                Fn.condition_not(Fn.condition_equals(self.domain_name.value_as_string, "")),
                Fn.condition_not(Fn.condition_equals(self.certificate_arn.value_as_string, "")),
            ),
        )
        domain = apigwv2.CfnDomainName(
            self,
            "CustomDomain",
            domain_name=self.domain_name.value_as_string,
            domain_name_configurations=[
                apigwv2.CfnDomainName.DomainNameConfigurationProperty(
                    certificate_arn=self.certificate_arn.value_as_string,
                    endpoint_type="REGIONAL",
                    security_policy="TLS_1_2",
                )
            ],
        )
        domain.cfn_options.condition = has_domain
        mapping = apigwv2.CfnApiMapping(
            self,
            "CustomDomainMapping",
            api_id=self.api.api_id,
            domain_name=self.domain_name.value_as_string,
            stage=self.stage.stage_name,
        )
        mapping.cfn_options.condition = has_domain
        mapping.node.add_dependency(domain)
        mapping.node.add_dependency(self.stage)
        target = CfnOutput(
            self,
            "CustomDomainTarget",
            value=domain.attr_regional_domain_name,
            description="Point a CNAME (or Route 53 alias) of DomainName at this name.",
        )
        target.condition = has_domain
        CfnOutput(self, "ApiUrl", value=self.api.api_endpoint, description="Public URL")

    # ------------------------------------------------------------------------------------------
    def _worker(self) -> None:
        config = self.config
        task_role, execution_role = self._roles("Worker")
        self.worker_task_role = task_role
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ConsumeQueue",
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueUrl",
                    "sqs:GetQueueAttributes",
                    "sqs:SendMessage",
                ],
                resources=[self.queue.queue_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="KombuQueueDiscovery",
                # kombu's SQS channel calls ListQueues when it starts (to fill its queue-URL
                # cache) unless the app configures predefined_queues; ListQueues returns names
                # and URLs only, and is scoped to this account and region.
                actions=["sqs:ListQueues"],
                resources=[f"arn:{self.partition}:sqs:{self.region}:{self.account}:*"],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="StoreReportsAndGrids",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                    "dynamodb:BatchGetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:DescribeTable",
                ],
                resources=[self.reports_table.table_arn, self.grids_table.table_arn],
            )
        )

        self.worker_logs = self._log_group("WorkerLogs", "worker")
        task_definition = self._task_definition(
            "Worker", config.worker_cpu, config.worker_memory, task_role, execution_role
        )
        environment = self._app_environment() | {
            "SAFETYHEATMAP_WORKER_CONCURRENCY": str(config.worker_concurrency),
            "SAFETYHEATMAP_WORKER_PREFETCH": str(config.worker_prefetch),
        }
        container = task_definition.add_container(
            "worker",
            image=ecs.ContainerImage.from_ecr_repository(
                self.worker_repository, tag=self.image_tag.value_as_string
            ),
            essential=True,
            environment=environment,
            readonly_root_filesystem=True,
            # SIGTERM = Celery warm shutdown: running tasks finish (hard limit 75 s); messages
            # reserved but not started come back after the visibility timeout. 120 s is the
            # Fargate maximum and also the Spot interruption notice.
            stop_timeout=Duration.seconds(120),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="worker",
                log_group=self.worker_logs,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        self.worker_service = ecs.FargateService(
            self,
            "WorkerService",
            service_name=config.worker_service_name,
            cluster=self.cluster,
            task_definition=task_definition,
            # desired_count left out: created with 1 (scaled to 0 once idle), and stack updates
            # never reset the count the scaler chose.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1)
            ],
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.worker_sg],
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
        )
        self.worker_service.node.add_dependency(self.capacity_providers)

    def _worker_scaling(self) -> None:
        """Scale the worker between 0 and N on fresh queue counts; see docs/DEPLOY.md."""
        config = self.config
        resource_id = f"service/{config.cluster_name}/{config.worker_service_name}"
        self.worker_scaling = appscaling.ScalableTarget(
            self,
            "WorkerScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=resource_id,
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=0,
            max_capacity=config.worker_max_tasks,
            # The service-linked role, as ECS's own auto_scale_task_count uses.
            role=iam.Role.from_role_arn(
                self,
                "EcsAutoScalingRole",
                f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/"
                "ecs.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_ECSService",
            ),
        )
        self.worker_scaling.node.add_dependency(self.worker_service)

        # The scaler: every minute, GetQueueAttributes (no CloudWatch delay); raises the
        # scalable target's minimum to 1 when a message waits, back to 0 when all is quiet.
        self.queue_scaler = self._small_function(
            "QueueScaler",
            "queue-scaler",
            QUEUE_SCALER_CODE,
            "Wakes the worker service from zero; publishes queue counts (EMF)",
            {
                "QUEUE_URL": self.queue.queue_url,
                "QUEUE_NAME": self.queue.queue_name,
                "CLUSTER_NAME": config.cluster_name,
                "SERVICE_NAME": config.worker_service_name,
            },
        )
        role = self.queue_scaler.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadQueueDepth",
                actions=["sqs:GetQueueAttributes"],
                resources=[self.queue.queue_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WorkerServiceForAutoScaling",
                # Application Auto Scaling calls these as the caller when a target is updated.
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=[self.worker_service.service_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeScalableTargets",
                # Reason: WILDCARD_REASONS (Describe* has no resource-level scope).
                actions=["application-autoscaling:DescribeScalableTargets"],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MoveWorkerFloor",
                # Target ARNs carry an id minted at registration: pattern + conditions.
                actions=["application-autoscaling:RegisterScalableTarget"],
                resources=[
                    f"arn:{self.partition}:application-autoscaling:{self.region}:"
                    f"{self.account}:scalable-target/*"
                ],
                conditions={
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "ecs",
                        "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
                    }
                },
            )
        )
        scheduler.Schedule(
            self,
            "QueueScalerTick",
            description="Every minute: read the queue, wake or release the worker service",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(1)),
            target=scheduler_targets.LambdaInvoke(
                self.queue_scaler, retry_attempts=0, max_event_age=Duration.minutes(1)
            ),
        )

        dims = {"QueueName": config.queue_name}
        minute = Duration.minutes(1)
        self.metric_visible = cw.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name="QueueVisible",
            dimensions_map=dims,
            statistic="Maximum",
            period=minute,
        )
        self.metric_in_flight = cw.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name="QueueInFlight",
            dimensions_map=dims,
            statistic="Maximum",
            period=minute,
        )
        self.metric_delayed = cw.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name="QueueDelayed",
            dimensions_map=dims,
            statistic="Maximum",
            period=minute,
        )
        self.metric_backlog_per_worker = cw.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name="BacklogPerWorker",
            dimensions_map=dims,
            statistic="Maximum",
            period=minute,
        )

        # Scale out: one more worker per minute while the backlog per worker stays high.
        # >= (not >) so that the threshold itself counts.
        scale_out = appscaling.StepScalingAction(
            self,
            "WorkerScaleOut",
            scaling_target=self.worker_scaling,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.minutes(2),
        )
        threshold = config.scale_out_backlog_per_worker
        scale_out.add_adjustment(adjustment=1, lower_bound=0, upper_bound=threshold * 4)
        scale_out.add_adjustment(adjustment=2, lower_bound=threshold * 4)
        self.scale_out_alarm = cw.Alarm(
            self,
            "WorkerBacklogHigh",
            alarm_name=f"{config.prefix}-WorkerBacklogHigh",
            alarm_description="Visible messages per worker above target: add workers",
            metric=self.metric_backlog_per_worker,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.scale_out_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_out))

        # Scale to zero: only after N minutes in which nothing was visible, delayed or in
        # flight. Never on CPU (idle CPU is no proof of idleness) nor on visible alone.
        scale_to_zero = appscaling.StepScalingAction(
            self,
            "WorkerScaleToZero",
            scaling_target=self.worker_scaling,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.minutes(1),
        )
        scale_to_zero.add_adjustment(adjustment=0, upper_bound=0)
        idle_minutes = config.idle_minutes_before_zero
        self.idle_alarm = cw.Alarm(
            self,
            "WorkerIdle",
            alarm_name=f"{config.prefix}-WorkerIdle",
            alarm_description=(
                f"No visible, delayed or in-flight message for {idle_minutes} minutes: "
                "scale the workers to zero"
            ),
            metric=cw.MathExpression(
                expression="visible + inflight + delayed",
                using_metrics={
                    "visible": self.metric_visible,
                    "inflight": self.metric_in_flight,
                    "delayed": self.metric_delayed,
                },
                period=minute,
                label="Backlog incl. in flight",
            ),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=idle_minutes,
            datapoints_to_alarm=idle_minutes,
            # No data (scaler broken) is not proof of idleness: keep the workers.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.idle_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_to_zero))

    def _small_function(
        self, construct_id: str, log_name: str, code: Path, description: str, env: dict[str, str]
    ) -> lambda_.Function:
        """A scheduled Python function of one file (index.py): arm64, 128 MB, its own log group.
        No reserved concurrency: a new account's whole quota can be 10, and reserving any of it
        fails the deploy. Each runs at most once a minute and finishes within seconds."""
        return lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(code), exclude=["__pycache__", "*.pyc"]),
            memory_size=128,
            timeout=Duration.seconds(20),
            log_group=self._log_group(f"{construct_id}Logs", log_name),
            environment=env,
        )

    def _roll_windows_schedule(self) -> None:
        # Hourly job without an always-on beat process. The scheduler invokes the roll gate,
        # which puts the Celery message on the queue only when a window has reports to drop
        # (roll_gate/index.py); the scaler then wakes a worker if none runs. Sent blindly, the
        # message would wake a worker every hour of an idle deployment.
        self.roll_gate = self._small_function(
            "RollGate",
            "roll-gate",
            ROLL_GATE_CODE,
            "Hourly: enqueue roll_windows only when a window has reports to drop",
            {
                "REPORTS_TABLE": self.reports_table.table_name,
                "GRIDS_TABLE": self.grids_table.table_name,
                "QUEUE_URL": self.queue.queue_url,
                "ROLL_BODY": roll_windows_body(self.config.queue_name),
            },
        )
        role = self.roll_gate.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadReportDaysAndMarks",
                actions=["dynamodb:Query"],
                resources=[self.reports_table.table_arn, self.grids_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EnqueueRoll", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]
            )
        )
        scheduler.Schedule(
            self,
            "RollWindowsHourly",
            description="Every hour: the roll gate enqueues safetyheatmap.roll_windows if due",
            schedule=scheduler.ScheduleExpression.cron(minute="0", hour="*"),
            target=scheduler_targets.LambdaInvoke(
                self.roll_gate, retry_attempts=3, max_event_age=Duration.minutes(30)
            ),
        )

    # ------------------------------------------------------------------------------------------
    def _alarms(self) -> None:
        config = self.config
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{config.prefix}-alarms",
            enforce_ssl=True,
            display_name="SafetyHeatmap alarms",
        )
        if config.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        notify = cw_actions.SnsAction(self.alarm_topic)
        five = Duration.minutes(5)

        def alarm(construct_id: str, **kwargs) -> cw.Alarm:
            # Named `<prefix>-<Id>`, as docs/OPERATIONS.md's runbook headings and the
            # notifications say, not CloudFormation's `<stack>-<Id><hash>`.
            created = cw.Alarm(
                self, construct_id, alarm_name=f"{config.prefix}-{construct_id}", **kwargs
            )
            created.add_alarm_action(notify)
            created.add_ok_action(notify)
            return created

        self.alarm_dlq = alarm(
            "DlqNotEmpty",
            alarm_description="Messages reached the dead-letter queue (a task failed N times)",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=five
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.alarm_oldest = alarm(
            "OldestMessageAge",
            alarm_description="A message has waited too long: workers not keeping up or down",
            metric=self.queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=five
            ),
            threshold=config.oldest_message_alarm_seconds,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        errors = self.api.metric_server_error(statistic="Sum", period=five)
        count = self.api.metric_count(statistic="Sum", period=five)
        self.alarm_5xx = alarm(
            "Api5xxRate",
            alarm_description="More than N% of API answers are 5xx (at least 20 requests)",
            metric=cw.MathExpression(
                expression="IF(requests >= 20, 100 * errors / requests, 0)",
                using_metrics={"errors": errors, "requests": count},
                period=five,
                label="5xx %",
            ),
            threshold=config.error_rate_alarm_percent,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.alarm_latency = alarm(
            "ApiLatencyP95",
            alarm_description="API p95 latency above the budget for 15 minutes",
            metric=self.api.metric_latency(statistic="p95", period=five),
            threshold=config.latency_alarm_ms,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.metric_task_failed = cw.Metric(
            namespace=METRIC_NAMESPACE, metric_name="TaskFailed", statistic="Sum", period=five
        )
        self.alarm_worker_errors = alarm(
            "WorkerTaskErrors",
            alarm_description="Worker tasks failing (EMF metric TaskFailed from the workers)",
            metric=self.metric_task_failed,
            threshold=5,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.alarm_scaler = alarm(
            "QueueScalerFailing",
            alarm_description="The queue scaler errors or stopped reporting: workers won't wake",
            metric=cw.MathExpression(
                expression="IF(FILL(ticks, 0) < 1 OR FILL(errors, 0) > 0, 1, 0)",
                using_metrics={
                    "ticks": self.metric_visible.with_(statistic="SampleCount", period=five),
                    "errors": self.queue_scaler.metric_errors(statistic="Sum", period=five),
                },
                period=five,
                label="scaler broken",
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        hour = Duration.hours(1)
        self.alarm_roll_gate = alarm(
            "RollGateFailing",
            alarm_description="The hourly roll gate failed: time-window heatmaps may not age",
            metric=self.roll_gate.metric_errors(statistic="Sum", period=hour),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    def _dashboard(self) -> None:
        five = Duration.minutes(5)
        worker_running = cw.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={
                "ClusterName": self.config.cluster_name,
                "ServiceName": self.config.worker_service_name,
            },
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self.config.prefix}",
            default_interval=Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    self.api.metric_count(statistic="Sum", period=five),
                    self.api.metric_client_error(statistic="Sum", period=five),
                    self.api.metric_server_error(statistic="Sum", period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="API latency (ms)",
                left=[
                    self.api.metric_latency(statistic="p50", period=five),
                    self.api.metric_latency(statistic="p95", period=five),
                    self.api.metric_integration_latency(statistic="p95", period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Web CPU / memory (%)",
                left=[
                    self.web_service.metric_cpu_utilization(period=five),
                    self.web_service.metric_memory_utilization(period=five),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue (scaler, per minute)",
                left=[self.metric_visible, self.metric_in_flight, self.metric_delayed],
                right=[worker_running],
                width=8,
            ),
            cw.GraphWidget(
                title="Oldest message age (s) / DLQ depth",
                left=[
                    self.queue.metric_approximate_age_of_oldest_message(
                        statistic="Maximum", period=five
                    )
                ],
                right=[
                    self.dlq.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=five
                    )
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Worker task failures / scaler errors",
                left=[self.metric_task_failed],
                right=[self.queue_scaler.metric_errors(statistic="Sum", period=five)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(
                title="Alarms",
                alarms=[
                    self.alarm_dlq,
                    self.alarm_oldest,
                    self.alarm_5xx,
                    self.alarm_latency,
                    self.alarm_worker_errors,
                    self.alarm_scaler,
                    self.alarm_roll_gate,
                ],
                width=24,
            )
        )


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """Access-log settings of an HTTP stage (a jsii interface, so a class rather than a dict)."""

    def __init__(
        self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat
    ) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


def _retention(days: int) -> logs.RetentionDays:
    days_to_member = {
        1: logs.RetentionDays.ONE_DAY,
        3: logs.RetentionDays.THREE_DAYS,
        5: logs.RetentionDays.FIVE_DAYS,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
    }
    if days not in days_to_member:
        raise ValueError(f"log retention must be one of {sorted(days_to_member)} days, not {days}")
    return days_to_member[days]
