"""VPC without NAT, public subnets only, security groups that admit only what is needed."""

from __future__ import annotations


def test_no_nat_and_only_public_subnets(synth, app_name, app_template):
    app_template.resource_count_is("AWS::EC2::NatGateway", 0)
    app_template.resource_count_is("AWS::EC2::VPC", 1)
    subnets = synth.resources(app_name, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    for subnet in subnets.values():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        assert tags["aws-cdk:subnet-type"] == "Public"
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    routes = synth.resources(app_name, "AWS::EC2::Route").values()
    assert all("GatewayId" in r["Properties"] for r in routes)
    assert not any("NatGatewayId" in r["Properties"] for r in routes)


def test_free_gateway_endpoints_only(synth, app_name):
    endpoints = synth.resources(app_name, "AWS::EC2::VPCEndpoint").values()
    assert {e["Properties"].get("VpcEndpointType", "Gateway") for e in endpoints} == {"Gateway"}


def test_default_security_group_is_restricted(app_template):
    app_template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_rejected_flows_are_logged(app_template):
    app_template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "REJECT", "LogDestinationType": "cloud-watch-logs"}
    )


def _sg_id(synth, app_name, description_start):
    for logical_id, sg in synth.resources(app_name, "AWS::EC2::SecurityGroup").items():
        if sg["Properties"]["GroupDescription"].startswith(description_start):
            return logical_id
    raise AssertionError(description_start)


def test_every_group_has_explicit_egress(synth, app_name):
    # Without inline egress, EC2 adds its default allow-all rule.
    for logical_id, sg in synth.resources(app_name, "AWS::EC2::SecurityGroup").items():
        assert sg["Properties"].get("SecurityGroupEgress"), logical_id


def test_nothing_is_reachable_from_the_internet(synth, app_name):
    for sg in synth.resources(app_name, "AWS::EC2::SecurityGroup").values():
        for rule in sg["Properties"].get("SecurityGroupIngress", []):
            assert "CidrIp" not in rule and "CidrIpv6" not in rule
    for rule in synth.resources(app_name, "AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in rule["Properties"] and "CidrIpv6" not in rule["Properties"]


def test_web_admits_only_the_vpc_link_on_its_port(synth, app_name):
    web = _sg_id(synth, app_name, "Web tasks")
    link = _sg_id(synth, app_name, "API Gateway VPC link")
    ingress = [
        r["Properties"]
        for r in synth.resources(app_name, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [web, "GroupId"]}
    ]
    for rule in ingress:
        rule.pop("Description", None)
    assert ingress == [
        {
            "FromPort": 8000,
            "ToPort": 8000,
            "IpProtocol": "tcp",
            "GroupId": {"Fn::GetAtt": [web, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [link, "GroupId"]},
        }
    ]


def test_worker_admits_nothing(synth, app_name):
    worker = _sg_id(synth, app_name, "Worker tasks")
    assert (
        "SecurityGroupIngress"
        not in synth.resources(app_name, "AWS::EC2::SecurityGroup")[worker]["Properties"]
    )
    for rule in synth.resources(app_name, "AWS::EC2::SecurityGroupIngress").values():
        assert rule["Properties"]["GroupId"] != {"Fn::GetAtt": [worker, "GroupId"]}


def test_egress_is_https_only_or_link_to_web(synth, app_name):
    web = _sg_id(synth, app_name, "Web tasks")
    for logical_id, sg in synth.resources(app_name, "AWS::EC2::SecurityGroup").items():
        for rule in sg["Properties"]["SecurityGroupEgress"]:
            if "CidrIp" in rule:
                assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
            else:
                assert rule["DestinationSecurityGroupId"] == {"Fn::GetAtt": [web, "GroupId"]}
                assert (rule["FromPort"], rule["ToPort"]) == (8000, 8000), logical_id
