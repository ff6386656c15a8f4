"""The dead-letter queue: list what is in it, and move it back to the queue (redrive).

Listing receives messages with a short visibility timeout and makes them visible again at once,
so it changes nothing but their receive count. Redrive sends each message back to the main queue
(``SendMessageBatch``) and deletes it from the DLQ only once the send succeeded, so a failure
half-way leaves a message in both queues at worst, which the idempotent tasks absorb. It resets
the Celery ``retries`` header, so a redriven task gets its full retries again. It does the same
locally and in AWS (no ``StartMessageMoveTask``: the emulator lacks it, and this shows progress).
Listings show ids and counts, never a report's place or text.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LIST_VISIBILITY = 30
REDRIVE_VISIBILITY = 60


@dataclass
class DeadLetter:
    message_id: str
    task: str
    task_id: str
    sent_at: str
    receives: int
    retries: int
    reports: int
    report_ids: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)


def decode(body: str) -> tuple[dict[str, Any], list[Any]] | None:
    """(headers, args) of a Celery message as our web and kombu write it, else None."""
    try:
        envelope = json.loads(base64.b64decode(body))
        payload = json.loads(base64.b64decode(envelope["body"]))
        return dict(envelope["headers"]), list(payload[0])
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        return None


def _reset_retries(body: str) -> str:
    try:
        envelope = json.loads(base64.b64decode(body))
        envelope["headers"]["retries"] = 0
    except (ValueError, KeyError, TypeError, binascii.Error):
        return body
    return base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()


def describe(message: dict[str, Any]) -> DeadLetter:
    attrs = message.get("Attributes", {})
    sent = int(attrs.get("SentTimestamp", "0")) / 1000
    letter = DeadLetter(
        message_id=message["MessageId"],
        task="(not a Celery message)",
        task_id="",
        sent_at=datetime.fromtimestamp(sent, UTC).isoformat(timespec="seconds") if sent else "",
        receives=int(attrs.get("ApproximateReceiveCount", "0")),
        retries=0,
        reports=0,
    )
    decoded = decode(message.get("Body", ""))
    if decoded is None:
        return letter
    headers, args = decoded
    letter.task = str(headers.get("task", ""))
    letter.task_id = str(headers.get("id", ""))
    letter.retries = int(headers.get("retries") or 0)
    items = args[0] if args and isinstance(args[0], list) else args[:1]
    for item in items:
        report = item.get("report", item) if isinstance(item, dict) else {}
        if isinstance(report, dict) and report.get("id"):
            letter.reports += 1
            letter.report_ids.append(str(report["id"]))
        if isinstance(item, dict) and item.get("request_id"):
            letter.request_ids.append(str(item["request_id"]))
    if headers.get("request_id"):
        letter.request_ids.append(str(headers["request_id"]))
    return letter


def _receive(sqs: Any, url: str, visibility: int, wait: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=wait,
        AttributeNames=["All"],
    ).get("Messages", [])
    return messages


def list_letters(sqs: Any, dlq_url: str, limit: int = 20) -> list[DeadLetter]:
    seen: dict[str, dict[str, Any]] = {}
    empty = 0
    while len(seen) < limit and empty < 2:
        batch = _receive(sqs, dlq_url, LIST_VISIBILITY, wait=0 if not empty else 1)
        fresh = [m for m in batch if m["MessageId"] not in seen]
        empty = empty + 1 if not fresh else 0
        for message in fresh:
            seen[message["MessageId"]] = message
    handles = [m["ReceiptHandle"] for m in seen.values()]
    for start in range(0, len(handles), 10):  # visible again right away: listing moves nothing
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ],
        )
    return [describe(m) for m in list(seen.values())[:limit]]


def redrive(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    *,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move up to ``limit`` messages (all when None) back to the queue; returns how many."""
    moved = 0
    empty = 0
    while (limit is None or moved < limit) and empty < 2:
        batch = _receive(sqs, dlq_url, REDRIVE_VISIBILITY, wait=0 if not empty else 1)
        if limit is not None:
            batch = batch[: limit - moved]
        if not batch:
            empty += 1
            continue
        empty = 0
        sent = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": _reset_retries(m["Body"])}
                for i, m in enumerate(batch)
            ],
        )
        ok = {entry["Id"] for entry in sent.get("Successful", [])}
        done = [m for i, m in enumerate(batch) if str(i) in ok]
        if done:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        moved += len(done)
        if progress:
            progress(len(done))
        if len(done) < len(batch):
            failed = sent.get("Failed", [])
            raise RuntimeError(f"SQS refused {len(failed)} message(s): {failed[:1]}")
    return moved
