"""Alarms to one SNS topic, and a dashboard."""

from __future__ import annotations

import json
import re

from conftest import REPO


def _topic_id(synth, app_name):
    (topic_id,) = synth.resources(app_name, "AWS::SNS::Topic")
    return topic_id


def _notifying_alarms(synth, app_name):
    topic = {"Ref": _topic_id(synth, app_name)}
    return [
        a["Properties"]
        for a in synth.resources(app_name, "AWS::CloudWatch::Alarm").values()
        if topic in a["Properties"].get("AlarmActions", [])
    ]


def _find(alarms, needle):
    found = [a for a in alarms if needle in json.dumps(a)]
    assert found, needle
    return found[0]


def test_required_alarms_notify_the_topic(synth, app_name, config):
    alarms = _notifying_alarms(synth, app_name)
    dlq = _find(alarms, "DeadLetterQueue")
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert dlq["Threshold"] == 1
    oldest = _find(alarms, "ApproximateAgeOfOldestMessage")
    assert oldest["Threshold"] == config.oldest_message_alarm_seconds
    errors = _find(alarms, '"5xx"')
    assert "IF(requests" in json.dumps(errors)
    latency = _find(alarms, '"Latency"')
    assert latency["ExtendedStatistic"] == "p95"
    worker = _find(alarms, "TaskFailed")
    assert worker["Namespace"] == "SafetyHeatmap"
    _find(alarms, "QueueScaler")


def test_alarms_also_say_when_they_recover(synth, app_name):
    topic = {"Ref": _topic_id(synth, app_name)}
    for alarm in _notifying_alarms(synth, app_name):
        assert topic in alarm["OKActions"]


def test_topic_enforces_tls(synth, app_name):
    (policy,) = synth.resources(app_name, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_dashboard_shows_api_queue_and_workers(synth, app_name):
    (dashboard,) = synth.resources(app_name, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "5xx",
        "Latency",
        "QueueVisible",
        "QueueInFlight",
        "RunningTaskCount",
        "ApproximateAgeOfOldestMessage",
        "TaskFailed",
        "alarms",
    ):
        assert needle in body, needle


def test_every_notifying_alarm_has_a_runbook_in_operations(synth, app_name, config):
    """docs/OPERATIONS.md holds one `### <AlarmId>: ...` section per alarm the topic hears of."""
    runbooks = re.findall(r"^### (\w+):", (REPO / "docs" / "OPERATIONS.md").read_text(), re.M)
    topic = {"Ref": _topic_id(synth, app_name)}
    names = [
        a["Properties"]["AlarmName"]
        for a in synth.resources(app_name, "AWS::CloudWatch::Alarm").values()
        if topic in a["Properties"].get("AlarmActions", [])
    ]
    assert sorted(names) == sorted(f"{config.prefix}-{r}" for r in runbooks)


def test_every_alarm_has_the_name_the_docs_use(synth, app_name, config):
    # The console, the CLI (`aws cloudwatch describe-alarms --alarm-names`) and the e-mails show
    # AlarmName; a generated one (`SafetyHeatmap-DlqNotEmpty1A2B3C`) matches no runbook heading.
    for logical_id, a in synth.resources(app_name, "AWS::CloudWatch::Alarm").items():
        name = a["Properties"]["AlarmName"]
        assert name.startswith(f"{config.prefix}-") and logical_id.startswith(
            name.removeprefix(f"{config.prefix}-")
        ), logical_id
