"""HTTP API -> VPC link -> Cloud Map: throttled, access-logged, optional custom domain."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match


def test_private_integration_through_vpc_link_to_cloud_map(synth, app_name, app_template):
    app_template.resource_count_is("AWS::ApiGatewayV2::VpcLink", 1)
    integration = synth.one(app_name, "AWS::ApiGatewayV2::Integration")
    assert integration["ConnectionType"] == "VPC_LINK"
    assert integration["IntegrationType"] == "HTTP_PROXY"
    uri = integration["IntegrationUri"]["Fn::GetAtt"]
    assert synth.templates[app_name]["Resources"][uri[0]]["Type"] == (
        "AWS::ServiceDiscovery::Service"
    )
    app_template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$default"})
    app_template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 0)


def test_stage_is_throttled_and_access_logged(synth, app_name, config):
    stage = synth.one(app_name, "AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == "$default"
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": config.api_rate_limit,
        "ThrottlingBurstLimit": config.api_burst_limit,
    }
    log_group = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.templates[app_name]["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "responseLatency", "integrationError"} <= set(fields)


def test_custom_domain_is_optional_by_parameters(synth, app_name, app_template):
    template = synth.templates[app_name]
    assert template["Parameters"]["DomainName"]["Default"] == ""
    assert template["Parameters"]["CertificateArn"]["Default"] == ""
    assert "HasCustomDomain" in template["Conditions"]
    app_template.has_resource(
        "AWS::ApiGatewayV2::DomainName",
        {
            "Condition": "HasCustomDomain",
            "Properties": {
                "DomainName": {"Ref": "DomainName"},
                "DomainNameConfigurations": [
                    Match.object_like(
                        {"CertificateArn": {"Ref": "CertificateArn"}, "EndpointType": "REGIONAL"}
                    )
                ],
            },
        },
    )
    app_template.has_resource("AWS::ApiGatewayV2::ApiMapping", {"Condition": "HasCustomDomain"})
    assert template["Outputs"]["CustomDomainTarget"]["Condition"] == "HasCustomDomain"
    assert "ApiUrl" in template["Outputs"]


def test_image_tag_is_a_parameter(synth, app_name):
    parameter = synth.templates[app_name]["Parameters"]["ImageTag"]
    assert parameter["Type"] == "String"
    assert "Default" not in parameter  # never deploy an image nobody named
