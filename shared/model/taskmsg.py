"""Celery task messages written directly, as kombu's SQS transport would write them.

The web service sends with its own boto3 client instead of through a Celery producer: it keeps
the acknowledgement path short with strict timeouts (a 503 fast when SQS is down), it can batch
several messages per SendMessageBatch, and the hourly roll gate in AWS (a Lambda, no Celery
in it) sends a body built here: infra/safetyheatmap_infra/constructs/roll_windows.py calls
:func:`celery_body` when the stack is synthesized, so this module is stdlib only. The worker
consumes these with stock Celery: tests/unit/shared/model/test_taskmsg.py decodes them with
kombu's SQS transport and Celery's request, tests/integration/test_taskmsg_wire.py has a real
worker run one.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

STORE_REPORT = "safetyheatmap.store_report"
STORE_REPORTS = "safetyheatmap.store_reports"
RECOMPUTE = "safetyheatmap.recompute"
ROLL_WINDOWS = "safetyheatmap.roll_windows"


_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every message: ``json.dumps`` with options builds a new one each call, ~30 %
of the cost of encoding a report (the acknowledgement path encodes one per request)."""
encode = _COMPACT.encode


def celery_body(
    task: str,
    args: list[Any],
    queue: str,
    *,
    task_id: str | None = None,
    headers: dict[str, Any] | None = None,
    delivery_tag: str | None = None,
) -> str:
    """The SQS MessageBody of one Celery (protocol 2, JSON) task message.

    ``headers`` override Celery's (e.g. ``origin``). ``delivery_tag`` is random unless given:
    kombu replaces it with the SQS receipt handle on receipt, so only a body that must come out
    byte for byte the same (the roll gate's, fixed in the template) passes one."""
    return celery_body_encoded(
        task, encode(args), queue, task_id=task_id, headers=headers, delivery_tag=delivery_tag
    )


def celery_body_encoded(
    task: str,
    args_json: str,
    queue: str,
    *,
    task_id: str | None = None,
    headers: dict[str, Any] | None = None,
    delivery_tag: str | None = None,
) -> str:
    """:func:`celery_body` with the task's positional arguments already encoded as a JSON
    array: the web encodes each report once, when it arrives (it needs the size to cut
    batches), and joins them into the message."""
    tid = task_id or str(uuid.uuid4())
    payload = f"[{args_json},{{}},{_EMBED}]"
    envelope = {
        "body": base64.b64encode(payload.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": tid,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": tid,
            "parent_id": None,
            "argsrepr": "",
            "kwargsrepr": "",
            "origin": "safetyheatmap-web",
            "ignore_result": True,
            **(headers or {}),
        },
        "properties": {
            "correlation_id": tid,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": delivery_tag or str(uuid.uuid4()),
        },
    }
    return base64.b64encode(encode(envelope).encode()).decode()


_EMBED = encode({"callbacks": None, "errbacks": None, "chain": None, "chord": None})
