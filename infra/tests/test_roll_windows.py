"""The hourly roll-windows job: EventBridge Scheduler invokes the roll gate, no beat process."""

from __future__ import annotations

import base64
import json

from conftest import REPO
from safetyheatmap_infra.constructs import roll_windows


def _gate(synth, app_name):
    (logical_id,) = [
        logical_id
        for logical_id, fn in synth.resources(app_name, "AWS::Lambda::Function").items()
        if fn["Properties"].get("Environment", {}).get("Variables", {}).get("ROLL_BODY")
    ]
    return logical_id, synth.resources(app_name, "AWS::Lambda::Function")[logical_id]


def _schedule(synth, app_name):
    gate_id, _ = _gate(synth, app_name)
    (schedule,) = [
        s["Properties"]
        for s in synth.resources(app_name, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [gate_id, "Arn"]}
    ]
    return schedule


def _statements(synth, app_name, role):
    return [
        statement
        for p in synth.resources(app_name, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for statement in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_hourly_schedule_invokes_the_roll_gate_not_the_queue(synth, app_name):
    """Sent straight to the queue, the message would wake a worker every hour of an idle
    deployment; the gate sends it only when a window has reports to drop."""
    schedule = _schedule(synth, app_name)
    assert schedule["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    queue_targets = [
        s
        for s in synth.resources(app_name, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["Queue4A7E3555", "Arn"]}
    ]
    assert queue_targets == []


def test_the_gate_may_query_the_tables_and_send_to_the_queue_only(synth, app_name):
    _, gate = _gate(synth, app_name)
    role = gate["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = _statements(synth, app_name, role)
    actions = sorted((s["Action"], json.dumps(s["Resource"], sort_keys=True)) for s in statements)
    assert [a for a, _ in actions] == ["dynamodb:Query", "sqs:SendMessage"]
    assert "ReportsTable" in actions[0][1] and "GridsTable" in actions[0][1]
    assert actions[1][1] == json.dumps({"Fn::GetAtt": ["Queue4A7E3555", "Arn"]})
    env = gate["Properties"]["Environment"]["Variables"]
    assert "ReportsTable" in json.dumps(env["REPORTS_TABLE"])
    assert gate["Properties"]["Architectures"] == ["arm64"]


def test_a_failing_gate_raises_an_alarm(synth, app_name):
    gate_id, _ = _gate(synth, app_name)
    dimension = {"Name": "FunctionName", "Value": {"Ref": gate_id}}
    alarms = [
        a["Properties"]
        for a in synth.resources(app_name, "AWS::CloudWatch::Alarm").values()
        if dimension in a["Properties"].get("Dimensions", [])
    ]
    assert len(alarms) == 1
    assert alarms[0]["MetricName"] == "Errors"
    assert alarms[0]["AlarmActions"]


def test_body_is_a_kombu_sqs_celery_message(synth, app_name, config):
    _, gate = _gate(synth, app_name)
    body = gate["Properties"]["Environment"]["Variables"]["ROLL_BODY"]
    assert body == roll_windows.roll_windows_body(config.queue_name)
    envelope = json.loads(base64.b64decode(body))
    assert envelope["headers"]["task"] == "safetyheatmap.roll_windows"
    assert envelope["headers"]["origin"] == roll_windows.SCHEDULER_ORIGIN
    assert envelope["properties"]["body_encoding"] == "base64"
    assert envelope["properties"]["delivery_info"]["routing_key"] == config.queue_name
    args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    assert (args, kwargs) == ([], {})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert len(body) < 4 * 1024  # Lambda environment variables total at most 4 KB


def test_body_comes_from_the_apps_message_builder(config):
    """One wire format: the gate's body is shared/model/taskmsg.py's, not a copy of it."""
    assert roll_windows.TASKMSG == REPO / "shared" / "model" / "taskmsg.py"
    messages = roll_windows.taskmsg()
    assert messages.ROLL_WINDOWS == "safetyheatmap.roll_windows"
    assert not (REPO / "infra" / "safetyheatmap_infra" / "celery_message.py").exists()
    ours = json.loads(base64.b64decode(roll_windows.roll_windows_body(config.queue_name)))
    theirs = json.loads(
        base64.b64decode(messages.celery_body(messages.ROLL_WINDOWS, [], config.queue_name))
    )
    for envelope in (ours, theirs):  # the only fields a synth fixes
        for key in ("id", "root_id", "origin"):
            envelope["headers"].pop(key)
        for key in ("correlation_id", "delivery_tag"):
            envelope["properties"].pop(key)
    assert ours == theirs
