"""The worker service: Celery on Fargate Spot, consuming the queue, writing the tables."""

from __future__ import annotations

from aws_cdk import CfnParameter, Duration, Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..config import Config
from .common import Part
from .compute import Compute, app_environment, roles, task_definition
from .data import Data
from .network import Network


class Worker(Part):
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
        stack = self.stack
        task_role, execution_role = roles(self, "Worker")
        self.task_role = task_role
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
                resources=[data.queue.queue_arn],
            )
        )
        task_role.add_to_policy(
            iam.PolicyStatement(
                sid="KombuQueueDiscovery",
                # kombu's SQS channel calls ListQueues when it starts (to fill its queue-URL
                # cache) unless the app configures predefined_queues; ListQueues returns names
                # and URLs only, and is scoped to this account and region.
                actions=["sqs:ListQueues"],
                resources=[f"arn:{stack.partition}:sqs:{stack.region}:{stack.account}:*"],
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
                resources=[data.reports_table.table_arn, data.grids_table.table_arn],
            )
        )

        self.logs = self.log_group("WorkerLogs", "worker")
        definition = task_definition(
            self, "Worker", config.worker_cpu, config.worker_memory, task_role, execution_role
        )
        environment = app_environment(self, data) | {
            "SAFETYHEATMAP_WORKER_CONCURRENCY": str(config.worker_concurrency),
            "SAFETYHEATMAP_WORKER_PREFETCH": str(config.worker_prefetch),
        }
        container = definition.add_container(
            "worker",
            image=ecs.ContainerImage.from_ecr_repository(
                compute.worker_repository, tag=image_tag.value_as_string
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
                log_group=self.logs,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        self.service = ecs.FargateService(
            self,
            "WorkerService",
            service_name=config.worker_service_name,
            cluster=compute.cluster,
            task_definition=definition,
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
            security_groups=[network.worker_sg],
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
        )
        self.service.node.add_dependency(compute.capacity_providers)
