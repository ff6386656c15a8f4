"""The ECS cluster and what both services share: capacity providers, service discovery, the
image repositories, task roles, task definitions and the app's environment."""

from __future__ import annotations

from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from ..config import Config
from .common import Part
from .data import Data
from .network import Network


class Compute(Part):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, network: Network
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=config.cluster_name,
            vpc=network.vpc,
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
            vpc=network.vpc,
            description="Service discovery for the API Gateway VPC link",
        )
        # Created by the base stack; imported by name so the stacks share no exports.
        self.web_repository = ecr.Repository.from_repository_name(
            self, "WebRepo", config.web_repository_name
        )
        self.worker_repository = ecr.Repository.from_repository_name(
            self, "WorkerRepo", config.worker_repository_name
        )


def app_environment(part: Part, data: Data) -> dict[str, str]:
    """The settings both containers read (shared/config/settings.py)."""
    config = part.config
    return {
        "SAFETYHEATMAP_AWS_REGION": part.stack.region,
        "SAFETYHEATMAP_AWS_ENDPOINT_URL": "",
        "SAFETYHEATMAP_QUEUE_NAME": data.queue.queue_name,
        "SAFETYHEATMAP_DLQ_NAME": data.dlq.queue_name,
        "SAFETYHEATMAP_REPORTS_TABLE": data.reports_table.table_name,
        "SAFETYHEATMAP_GRIDS_TABLE": data.grids_table.table_name,
        "SAFETYHEATMAP_VISIBILITY_TIMEOUT": str(config.visibility_timeout),
        "SAFETYHEATMAP_MAX_RECEIVES": str(config.max_receives),
        "SAFETYHEATMAP_LOG_LEVEL": "INFO",
    }


def roles(part: Part, name: str) -> tuple[iam.Role, iam.Role]:
    """The task role (the containers' permissions) and the execution role (the ECS agent's)."""
    path = part.config.role_path
    task_role = iam.Role(
        part,
        f"{name}TaskRole",
        path=path,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description=f"SafetyHeatmap {name.lower()} containers: least privilege on data",
    )
    execution_role = iam.Role(
        part,
        f"{name}ExecutionRole",
        path=path,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description=f"ECS agent for {name.lower()}: pull the image, write the logs",
    )
    return task_role, execution_role


def task_definition(
    part: Part, name: str, cpu: int, memory: int, task_role: iam.Role, execution_role: iam.Role
) -> ecs.FargateTaskDefinition:
    created = ecs.FargateTaskDefinition(
        part,
        f"{name}TaskDefinition",
        family=f"{part.config.prefix}-{name.lower()}",
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
    created.add_volume(name="tmp")
    return created
