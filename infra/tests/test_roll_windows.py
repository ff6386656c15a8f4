"""The hourly roll-windows job: EventBridge Scheduler straight to SQS, no beat process."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from conftest import REPO
from safetyheatmap_infra.celery_message import (
    ROLL_WINDOWS_TASK,
    celery_sqs_body,
    roll_windows_body,
)


def _schedule(synth, app_name):
    (schedule,) = [
        s["Properties"]
        for s in synth.resources(app_name, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["Queue4A7E3555", "Arn"]}
    ]
    return schedule


def test_hourly_schedule_targets_the_queue(synth, app_name):
    schedule = _schedule(synth, app_name)
    assert schedule["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    role = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources(app_name, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    assert policies == [
        [
            {
                "Action": "sqs:SendMessage",
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": ["Queue4A7E3555", "Arn"]},
            }
        ]
    ]


def test_body_is_a_kombu_sqs_celery_message(synth, app_name, config):
    body = _schedule(synth, app_name)["Target"]["Input"]
    assert body == roll_windows_body(config.queue_name)
    envelope = json.loads(base64.b64decode(body))
    assert envelope["headers"]["task"] == ROLL_WINDOWS_TASK == "safetyheatmap.roll_windows"
    assert envelope["properties"]["body_encoding"] == "base64"
    assert envelope["properties"]["delivery_info"]["routing_key"] == config.queue_name
    args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    assert (args, kwargs) == ([], {})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert len(body) < 256 * 1024


def test_body_matches_the_apps_own_message_builder(config):
    """The app writes Celery messages itself (shared/taskmsg.py); the schedule must match it."""
    sys.path.insert(0, str(REPO))
    taskmsg = pytest.importorskip("shared.taskmsg")  # stdlib only; skipped if it moves
    theirs = json.loads(
        base64.b64decode(
            taskmsg.celery_body(taskmsg.ROLL_WINDOWS, [], config.queue_name, task_id="fixed")
        )
    )
    ours = json.loads(
        base64.b64decode(celery_sqs_body(ROLL_WINDOWS_TASK, config.queue_name, "fixed"))
    )
    for envelope in (theirs, ours):
        envelope["headers"].pop("origin")
        envelope["properties"].pop("delivery_tag")
    assert ours == theirs
