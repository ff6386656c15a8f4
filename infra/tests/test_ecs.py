"""Cluster, services, task definitions: Fargate and Spot, Insights, Cloud Map, settings."""

from __future__ import annotations

from aws_cdk.assertions import Match

SETTINGS_SHARED = {
    "SAFETYHEATMAP_AWS_REGION",
    "SAFETYHEATMAP_AWS_ENDPOINT_URL",
    "SAFETYHEATMAP_QUEUE_NAME",
    "SAFETYHEATMAP_DLQ_NAME",
    "SAFETYHEATMAP_REPORTS_TABLE",
    "SAFETYHEATMAP_GRIDS_TABLE",
    "SAFETYHEATMAP_VISIBILITY_TIMEOUT",
    "SAFETYHEATMAP_MAX_RECEIVES",
}


def _container(synth, app_name, family):
    task = synth.one(app_name, "AWS::ECS::TaskDefinition", Family=family)
    (container,) = task["ContainerDefinitions"]
    return task, container


def _env(container):
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def test_cluster_has_fargate_and_spot_and_insights(app_template, config):
    app_template.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": config.cluster_name,
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )
    app_template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"])},
    )


def test_web_service_on_fargate_with_cloud_map_srv(synth, app_name, config, app_template):
    web = synth.one(app_name, "AWS::ECS::Service", ServiceName=config.web_service_name)
    assert web["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1}
    ]
    assert web["ServiceRegistries"][0]["ContainerPort"] == 8000
    assert web["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    assert web["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    app_template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {"DnsConfig": {"DnsRecords": [{"Type": "SRV", "TTL": Match.any_value()}]}},
    )
    app_template.resource_count_is("AWS::ServiceDiscovery::PrivateDnsNamespace", 1)


def test_web_keeps_at_least_one_task_and_scales_on_cpu(synth, app_name, config):
    targets = [
        t["Properties"]
        for t in synth.resources(app_name, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if t["Properties"]["MinCapacity"] >= 1
    ]
    assert len(targets) == 1
    assert targets[0]["MinCapacity"] == config.web_min_tasks >= 1
    policies = [
        p["Properties"]
        for p in synth.resources(app_name, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["PolicyType"] == "TargetTrackingScaling"
    ]
    assert len(policies) == 1  # only the web's; never the worker's


def test_worker_service_on_spot_without_fixed_count(synth, app_name, config):
    worker = synth.one(app_name, "AWS::ECS::Service", ServiceName=config.worker_service_name)
    assert worker["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    # No DesiredCount: a stack update must never reset the count the scaler chose.
    assert "DesiredCount" not in worker
    assert "ServiceRegistries" not in worker
    assert worker["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "ENABLED"


def test_web_container(synth, app_name, config):
    task, web = _container(synth, app_name, f"{config.prefix}-web")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert (int(task["Cpu"]), int(task["Memory"])) == (config.web_cpu, config.web_memory)
    assert web["ReadonlyRootFilesystem"] is True
    assert web["MountPoints"] == [
        {"ContainerPath": "/tmp", "SourceVolume": "tmp", "ReadOnly": False}  # noqa: S108
    ]
    assert web["PortMappings"][0]["ContainerPort"] == 8000
    assert "/healthz" in " ".join(web["HealthCheck"]["Command"])
    env = _env(web)
    assert set(env) >= SETTINGS_SHARED
    assert env["SAFETYHEATMAP_HOST"] == "0.0.0.0"  # noqa: S104
    assert env["SAFETYHEATMAP_PORT"] == "8000"
    assert env["SAFETYHEATMAP_WEB_WORKERS"] == str(config.web_workers)
    assert env["SAFETYHEATMAP_WEB_THREADS"] == str(config.web_threads)
    assert env["SAFETYHEATMAP_WEB_WORKER_CLASS"] == config.web_worker_class == "gevent"
    assert env["SAFETYHEATMAP_AWS_ENDPOINT_URL"] == ""
    # The VPC link's addresses are the only proxies whose X-Forwarded-For the web believes.
    vpc_id = env["SAFETYHEATMAP_TRUSTED_PROXIES"]["Fn::GetAtt"]
    assert vpc_id[1] == "CidrBlock"
    assert synth.templates[app_name]["Resources"][vpc_id[0]]["Type"] == "AWS::EC2::VPC"
    queue_id = env["SAFETYHEATMAP_QUEUE_NAME"]["Fn::GetAtt"][0]
    resources = synth.templates[app_name]["Resources"]
    assert resources[queue_id]["Properties"]["QueueName"] == config.queue_name
    table_id = env["SAFETYHEATMAP_GRIDS_TABLE"]["Ref"]
    assert resources[table_id]["Properties"]["TableName"] == config.grids_table_name
    assert env["SAFETYHEATMAP_VISIBILITY_TIMEOUT"] == str(config.visibility_timeout)
    assert web["Image"]["Fn::Join"][1][-1] == {"Ref": "ImageTag"}


def test_web_tasks_share_one_client_hash_key_from_secrets_manager(synth, app_name, config):
    """Every web task keys rate limits and submitter pseudonyms alike: one secret, injected by
    ECS (never in the task definition's environment), readable by the execution role only."""
    _, web = _container(synth, app_name, f"{config.prefix}-web")
    assert "SAFETYHEATMAP_CLIENT_HASH_KEY" not in _env(web)
    (secret,) = web["Secrets"]
    assert secret["Name"] == "SAFETYHEATMAP_CLIENT_HASH_KEY"
    secret_id = secret["ValueFrom"]["Ref"]
    resource = synth.templates[app_name]["Resources"][secret_id]
    assert resource["Type"] == "AWS::SecretsManager::Secret"
    assert resource["Properties"]["GenerateSecretString"]["PasswordLength"] == 48
    assert not synth.resources(app_name, "AWS::SecretsManager::RotationSchedule")
    _, worker = _container(synth, app_name, f"{config.prefix}-worker")
    assert "Secrets" not in worker


def test_worker_container(synth, app_name, config):
    task, worker = _container(synth, app_name, f"{config.prefix}-worker")
    assert (int(task["Cpu"]), int(task["Memory"])) == (config.worker_cpu, config.worker_memory)
    assert worker["ReadonlyRootFilesystem"] is True
    # Time for Celery's warm shutdown on SIGTERM (deploys, scale-in, Spot interruption).
    assert worker["StopTimeout"] == 120
    assert "PortMappings" not in worker or worker["PortMappings"] == []
    env = _env(worker)
    assert set(env) >= SETTINGS_SHARED
    assert env["SAFETYHEATMAP_WORKER_CONCURRENCY"] == str(config.worker_concurrency)
    assert env["SAFETYHEATMAP_WORKER_PREFETCH"] == str(config.worker_prefetch)
    assert worker["Image"]["Fn::Join"][1][-1] == {"Ref": "ImageTag"}


def test_no_secrets_in_task_environment(synth, app_name):
    for task in synth.resources(app_name, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            for name in _env(container):
                assert not any(w in name for w in ("SECRET", "PASSWORD", "ACCESS_KEY", "TOKEN"))


def test_logs_go_to_groups_with_retention(synth, app_name, config):
    groups = synth.resources(app_name, "AWS::Logs::LogGroup")
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == config.log_retention_days, logical_id
    for task in synth.resources(app_name, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            log = container["LogConfiguration"]
            assert log["LogDriver"] == "awslogs"
            assert log["Options"]["awslogs-group"]["Ref"] in groups


def test_services_wait_for_the_capacity_provider_association(synth, app_name):
    (association,) = synth.resources(app_name, "AWS::ECS::ClusterCapacityProviderAssociations")
    for logical_id, service in synth.resources(app_name, "AWS::ECS::Service").items():
        assert association in service.get("DependsOn", []), logical_id
