"""Queue and DLQ, tables, repositories."""

from __future__ import annotations


def test_queue_encrypted_with_redrive(synth, app_name, config):
    queue = synth.one(app_name, "AWS::SQS::Queue", QueueName=config.queue_name)
    dlq = synth.one(app_name, "AWS::SQS::Queue", QueueName=config.dlq_name)
    for q in (queue, dlq):
        assert q["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == config.max_receives == 5
    assert queue["VisibilityTimeout"] == config.visibility_timeout == 180
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_queues_refuse_plain_http(synth, app_name):
    policies = synth.resources(app_name, "AWS::SQS::QueuePolicy").values()
    assert len(policies) == 2
    for policy in policies:
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_tables_on_demand_with_pitr(synth, app_name, config):
    for name in (config.reports_table_name, config.grids_table_name):
        table = synth.one(app_name, "AWS::DynamoDB::Table", TableName=name)
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert table["AttributeDefinitions"] == [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ]
        assert table["DeletionProtectionEnabled"] is True
    for table in synth.resources(app_name, "AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Retain"


def test_repositories_scan_on_push_with_immutable_tags(synth, base_name, config):
    repos = synth.resources(base_name, "AWS::ECR::Repository")
    names = {r["Properties"]["RepositoryName"] for r in repos.values()}
    assert names == {config.web_repository_name, config.worker_repository_name}
    for repo in repos.values():
        props = repo["Properties"]
        assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert props["ImageTagMutability"] == "IMMUTABLE"
        assert "LifecyclePolicy" in props
        assert repo["DeletionPolicy"] == "Retain"


def test_every_log_group_has_retention(synth):
    for template in synth.templates.values():
        for logical_id, r in template["Resources"].items():
            if r["Type"] == "AWS::Logs::LogGroup":
                assert r["Properties"].get("RetentionInDays"), logical_id


def test_every_function_logs_to_a_group_with_retention(synth):
    # A function without LoggingConfig logs to /aws/lambda/<name>, which Lambda creates on its
    # first run with no retention; CDK's own handlers (restrict_default_security_group) included.
    for template in synth.templates.values():
        resources = template["Resources"]
        for logical_id, r in resources.items():
            if r["Type"] == "AWS::Lambda::Function":
                group = r["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
                assert "Ref" in group, logical_id
                assert resources[group["Ref"]]["Properties"]["RetentionInDays"], logical_id
