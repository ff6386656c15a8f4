"""Least privilege: exact actions per role, and no "*" resource without a written reason."""

from __future__ import annotations

import json

from safetyheatmap_infra import app_stack, base_stack

REASONS = app_stack.WILDCARD_REASONS | base_stack.WILDCARD_REASONS


def _statements(template):
    for logical_id, resource in template["Resources"].items():
        documents = []
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(resource["Properties"]["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _role_policy(synth, stack, role_prefix):
    template = synth.templates[stack]
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r["Ref"] for r in resource["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    assert found, role_prefix
    return found


def _actions(statements):
    return {a for s in statements for a in _as_list(s["Action"])}


def test_no_star_resource_without_a_written_reason(synth):
    for template in synth.templates.values():
        for logical_id, statement in _statements(template):
            if "*" in _as_list(statement.get("Resource", [])):
                for action in _as_list(statement["Action"]):
                    assert REASONS.get(action), f"{logical_id}: {action} on '*' has no reason"


def test_no_wildcard_actions(synth):
    for template in synth.templates.values():
        for logical_id, statement in _statements(template):
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: {action}"


def test_web_may_send_and_read_grids_only(synth, app_name):
    statements = _role_policy(synth, app_name, "WebTaskRole")
    assert _actions(statements) == {
        "sqs:SendMessage",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:DescribeTable",
    }
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["EnqueueReports"]["Resource"] == {"Fn::GetAtt": ["Queue4A7E3555", "Arn"]}
    assert _as_list(by_sid["DeadLetterStatus"]["Action"]) == [
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    ]
    assert _as_list(by_sid["ReportsReadiness"]["Action"]) == ["dynamodb:DescribeTable"]
    grids = by_sid["ReadGrids"]["Resource"]["Fn::GetAtt"][0]
    assert grids.startswith("GridsTable")


def test_worker_may_consume_and_write_both_tables(synth, app_name, config):
    statements = _role_policy(synth, app_name, "WorkerTaskRole")
    assert _actions(statements) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "sqs:ListQueues",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
    }
    tables = next(s for s in statements if s["Sid"] == "StoreReportsAndGrids")["Resource"]
    assert sorted(t["Fn::GetAtt"][0][:5] for t in tables) == ["Grids", "Repor"]
    queue = next(s for s in statements if s["Sid"] == "ConsumeQueue")["Resource"]
    assert queue == {"Fn::GetAtt": ["Queue4A7E3555", "Arn"]}
    # kombu lists queues at start-up (no predefined_queues): account/region scope, not "*".
    discovery = next(s for s in statements if s["Sid"] == "KombuQueueDiscovery")
    assert discovery["Action"] == "sqs:ListQueues"
    assert discovery["Resource"] == f"arn:aws:sqs:{config.region}:{config.account}:*"


def test_task_roles_have_a_path_ci_may_pass(synth, app_name, config):
    roles = synth.resources(app_name, "AWS::IAM::Role")
    for prefix in ("WebTaskRole", "WebExecutionRole", "WorkerTaskRole", "WorkerExecutionRole"):
        (role,) = [r for lid, r in roles.items() if lid.startswith(prefix)]
        assert role["Properties"]["Path"] == config.role_path


def test_github_roles_trust_only_this_repository(synth, base_name, config):
    roles = synth.resources(base_name, "AWS::IAM::Role")
    subjects = {}
    for logical_id, role in roles.items():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        condition = statement["Condition"]["StringEquals"]
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        kind = "deploy" if logical_id.startswith("GithubDeployRole") else "infra"
        subjects[kind] = condition["token.actions.githubusercontent.com:sub"]
    assert subjects == {
        "deploy": f"repo:{config.github_repo}:ref:refs/heads/{config.github_branch}",
        "infra": f"repo:{config.github_repo}:environment:{config.github_infra_environment}",
    }
    providers = synth.resources(base_name, "AWS::IAM::OIDCProvider")
    assert [p["Properties"]["Url"] for p in providers.values()] == [
        "https://token.actions.githubusercontent.com"
    ]


def test_infra_role_can_only_assume_cdk_bootstrap_roles(synth, base_name, config):
    statements = _role_policy(synth, base_name, "GithubInfraRole")
    assert _actions(statements) == {"sts:AssumeRole", "sts:TagSession"}
    (resource,) = _as_list(statements[0]["Resource"])
    assert f":role/cdk-{config.cdk_qualifier}-*-" in json.dumps(resource)


def test_deploy_role_pushes_images_and_rolls_services_only(synth, base_name, config):
    statements = _role_policy(synth, base_name, "GithubDeployRole")
    actions = _actions(statements)
    assert {"ecr:PutImage", "ecs:UpdateService", "ecs:RegisterTaskDefinition"} <= actions
    assert not {a for a in actions if a.startswith(("cloudformation:", "iam:Create"))}
    assume = next(s for s in statements if "sts:AssumeRole" in _as_list(s["Action"]))
    assert "lookup-role" in json.dumps(assume["Resource"])  # read-only: cdk diff, no deploy
    pass_role = next(s for s in statements if "iam:PassRole" in _as_list(s["Action"]))
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert f":role{config.role_path}*" in json.dumps(pass_role["Resource"])
    update = next(s for s in statements if "ecs:UpdateService" in _as_list(s["Action"]))
    assert f"service/{config.cluster_name}/" in json.dumps(update["Resource"])
