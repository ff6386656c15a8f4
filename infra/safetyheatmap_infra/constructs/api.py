"""The public HTTP API: throttled, access-logged without client addresses, optional domain."""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnCondition, CfnOutput, CfnParameter, Duration, Fn
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config import Config
from .common import Part
from .network import Network
from .web import Web


class Api(Part):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        network: Network,
        web: Web,
        domain_name: CfnParameter,
        certificate_arn: CfnParameter,
    ) -> None:
        super().__init__(scope, construct_id, config=config)
        self.vpc_link = apigwv2.VpcLink(
            self,
            "VpcLink",
            vpc_link_name=self.flat_name("VpcLink"),
            vpc=network.vpc,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[network.link_sg],
        )
        assert web.service.cloud_map_service is not None
        self.api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-api",
            description="SafetyHeatmap public API and static frontend",
            create_default_stage=False,
            default_integration=integrations.HttpServiceDiscoveryIntegration(
                "Web",
                web.service.cloud_map_service,
                vpc_link=self.vpc_link,
                timeout=Duration.seconds(29),
            ),
        )
        self.access_logs = self.log_group("ApiAccessLogs", "api-access")
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
        self._custom_domain(domain_name, certificate_arn)
        CfnOutput(self, "ApiUrl", value=self.api.api_endpoint, description="Public URL")

    def _custom_domain(self, domain_name: CfnParameter, certificate_arn: CfnParameter) -> None:
        """Optional custom domain, chosen by stack parameters (no re-synth needed)."""
        has_domain = CfnCondition(
            self,
            "HasCustomDomain",
            expression=Fn.condition_and(
                Fn.condition_not(Fn.condition_equals(domain_name.value_as_string, "")),
                Fn.condition_not(Fn.condition_equals(certificate_arn.value_as_string, "")),
            ),
        )
        domain = apigwv2.CfnDomainName(
            self,
            "CustomDomain",
            domain_name=domain_name.value_as_string,
            domain_name_configurations=[
                apigwv2.CfnDomainName.DomainNameConfigurationProperty(
                    certificate_arn=certificate_arn.value_as_string,
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
            domain_name=domain_name.value_as_string,
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
