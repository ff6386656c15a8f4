"""The VPC and security groups: public subnets only, nothing admitted from the internet."""

from __future__ import annotations

from aws_cdk import CfnResource, Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config import Config
from .common import WEB_PORT, Part


class Network(Part):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id, config=config)
        stack_name = self.stack.stack_name
        # Public subnets only: no NAT gateway (~$32/month each). Tasks get a public IP for AWS
        # APIs; their security groups admit nothing from the internet.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            # Name tags as they were before the stack was split into parts (they name the path).
            vpc_name=f"{stack_name}/Vpc",
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
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("Name", f"{stack_name}/Vpc/{subnet.node.id}")
        self._cdk_handler_logs()
        # Free gateway endpoints: DynamoDB traffic and ECR layer downloads (S3) stay private.
        self.vpc.add_gateway_endpoint(
            "DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
        )
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        flow_logs = self.log_group("FlowLogs", "vpc-flow-rejects")
        rejected = self.vpc.add_flow_log(
            "RejectedFlows",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        Tags.of(rejected).add("Name", f"{stack_name}/Vpc/RejectedFlows")
        self._security_groups()

    def _cdk_handler_logs(self) -> None:
        """Give CDK's own Lambda handlers a log group with retention.

        restrict_default_security_group adds a CDK-provided function (to the stack, not to this
        part). Left alone, it would log to /aws/lambda/<name>, a group that Lambda creates on the
        first run and that never expires. Its role already has AWSLambdaBasicExecutionRole,
        which may write to any group.
        """
        group = self.log_group("CdkHandlerLogs", "cdk-handlers")
        for child in self.stack.node.children:
            if child.node.id.startswith("Custom::") and child.node.id.endswith("Provider"):
                handler = child.node.try_find_child("Handler")
                if isinstance(handler, CfnResource):
                    handler.add_property_override(
                        "LoggingConfig", {"LogGroup": group.log_group_name}
                    )

    def _security_groups(self) -> None:
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
