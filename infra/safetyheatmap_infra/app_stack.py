"""The SafetyHeatmap service stack, composed of its parts (constructs/).

Traffic: client -> API Gateway HTTP API (throttled, access-logged) -> VPC link -> Cloud Map SRV
record -> web task (Fargate) -> SQS queue -> worker tasks (Fargate Spot, 0..N) -> DynamoDB.

Money: public subnets only (no NAT gateway), no load balancer (the HTTP API's VPC link and Cloud
Map are free or cents), the worker runs only while there is work, DynamoDB and the API are paid
per request. docs/DEPLOY.md has the cost table.
"""

from __future__ import annotations

from aws_cdk import CfnElement, CfnParameter, Stack, Tags
from constructs import Construct

from .config import Config
from .constructs.alarms import Alarms
from .constructs.api import Api
from .constructs.common import Part
from .constructs.compute import Compute
from .constructs.dashboard import Dashboard
from .constructs.data import Data
from .constructs.network import Network
from .constructs.roll_windows import RollWindows
from .constructs.web import Web
from .constructs.worker import Worker
from .constructs.worker_scaling import WorkerScaling
from .logical_ids import flat_path, unique_id

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

        # The order matters beyond dependencies: a part that adds a statement to another's
        # role changes that policy's statement order.
        self.network = Network(self, "Network", config=config)
        self.data = Data(self, "Data", config=config)
        self.compute = Compute(self, "Compute", config=config, network=self.network)
        self.web = Web(
            self,
            "Web",
            config=config,
            network=self.network,
            data=self.data,
            compute=self.compute,
            image_tag=self.image_tag,
        )
        self.api = Api(
            self,
            "Api",
            config=config,
            network=self.network,
            web=self.web,
            domain_name=self.domain_name,
            certificate_arn=self.certificate_arn,
        )
        self.worker = Worker(
            self,
            "Worker",
            config=config,
            network=self.network,
            data=self.data,
            compute=self.compute,
            image_tag=self.image_tag,
        )
        self.worker_scaling = WorkerScaling(
            self, "WorkerScaling", config=config, data=self.data, worker=self.worker
        )
        self.roll_windows = RollWindows(self, "RollWindows", config=config, data=self.data)
        self.alarms = Alarms(
            self,
            "Alarms",
            config=config,
            data=self.data,
            api=self.api,
            scaling=self.worker_scaling,
            roll_windows=self.roll_windows,
        )
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            config=config,
            data=self.data,
            api=self.api,
            web=self.web,
            scaling=self.worker_scaling,
            alarms=self.alarms,
        )

    def _allocate_logical_id(self, cfn_element: CfnElement) -> str:
        """A resource's logical ID as if its part were not in the path (logical_ids.py): the
        IDs the resources had before the split, so a deploy replaces nothing."""
        parts = {child.node.id for child in self.node.children if isinstance(child, Part)}
        below = cfn_element.node.path[len(self.node.path) + 1 :].split("/")
        return unique_id(flat_path(below, parts))
