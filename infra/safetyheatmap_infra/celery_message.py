"""The "roll windows" message, which the hourly roll gate (a Lambda) puts on the SQS queue when due.

PLACEHOLDER, to be replaced by the app team with the exact body their Celery version expects.
Until then this is a Celery protocol-2 task message for ``safetyheatmap.roll_windows`` with no
arguments, in kombu's SQS wire format: the SQS body is base64 of the JSON envelope that kombu's
virtual transport puts on the queue, and the envelope's ``body`` is itself base64 of the JSON
``[args, kwargs, embed]`` triple (the layout kombu 5.7 / Celery 5.7 produce for ``send_task``,
and the layout of the app's own ``shared.model.taskmsg.celery_body``).

The task id is fixed because the schedule sends the same bytes every hour; the task must be
idempotent per window anyway (it may also be redelivered by SQS).
"""

from __future__ import annotations

import base64
import json

ROLL_WINDOWS_TASK = "safetyheatmap.roll_windows"
# A fixed, recognisable id: the body is built once, at synth time, into the gate's environment.
ROLL_WINDOWS_TASK_ID = "5afe7ea7-0000-4000-8000-0000000000a1"
SCHEDULER_ORIGIN = "eventbridge-scheduler"


def _b64_json(value: object) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def celery_sqs_body(task: str, queue_name: str, task_id: str = ROLL_WINDOWS_TASK_ID) -> str:
    """SQS MessageBody of a Celery task message with no arguments, as kombu would send it.

    Same layout as the app's ``shared.model.taskmsg.celery_body`` (a test compares the two).
    """
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    envelope = {
        "body": _b64_json([[], {}, embed]),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": "",
            "kwargsrepr": "",
            "origin": SCHEDULER_ORIGIN,
            "ignore_result": True,
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue_name},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": task_id,
        },
    }
    return base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()


def roll_windows_body(queue_name: str) -> str:
    """PLACEHOLDER body of the hourly roll-windows message (see the module docstring)."""
    return celery_sqs_body(ROLL_WINDOWS_TASK, queue_name)
