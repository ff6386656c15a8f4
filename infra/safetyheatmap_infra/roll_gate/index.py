"""Roll gate: every hour, enqueue the roll-windows task only when a window has reports to drop.

Why this exists (docs/DEPLOY.md, "Rolling the time windows"): the 7-, 30- and 365-day heatmaps
lose reports as they age, so every hour a worker re-marks the partitions whose reports are
crossing a window's edge. Sent blindly, that message wakes a worker from zero every hour of an
idle deployment: ~12 minutes of a Spot task and its public address each hour, most of the
worker's idle bill, to find nothing to do.

A report of day D crosses the edge of a window of S days while ``now - S`` falls on day D. The
gate asks the reports table whether any report was stored for the days ``now - S`` touched in
the last ``LOOKBACK`` (a day item ``day#<date>`` lists the partitions holding reports of that
day: one Query with ``Limit=1`` per day and window, six at most). Only if one was does it send
the message. Skipping is safe: the task rolls from the last roll it did (``rolled_at``), so the
hours skipped, in which no window had anything to drop, are covered by the next roll anyway. The
lookback is two hours, so one missed or late invocation still sees the day it straddled.

The roll also schedules a recompute when marks wait with none scheduled (a trigger lost with a
killed worker, docs/ARCHITECTURE.md), so the gate sends it too while a ``dirty`` or
``background`` mark is in the grids table: two more one-item Queries.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: The windows' lengths in days; the app's are ``shared.geo.tiles.WINDOWS`` (a test keeps them
#: equal).
SPANS_DAYS = (7, 30, 365)
LOOKBACK = timedelta(hours=2)


def days_to_check(now: datetime, spans_days: tuple[int, ...] = SPANS_DAYS) -> list[str]:
    """The days whose reports crossed a window's edge between ``now - LOOKBACK`` and ``now``."""
    days: set[date] = set()
    for span in spans_days:
        first = (now - LOOKBACK - timedelta(days=span)).date()
        last = (now - timedelta(days=span)).date()
        day = first
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return sorted(d.isoformat() for d in days)


def day_key(day: str) -> str:
    """The reports table's key for the partitions holding reports of ``day``
    (shared/store/reports.py)."""
    return f"day#{day}"


#: Partition keys of the grids table under which marks wait for a recompute
#: (shared/store/grids.py).
MARK_KEYS = ("dirty", "background")


def _exists(ddb: Any, table: str, pk: str) -> bool:
    return bool(
        ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ProjectionExpression="pk",
            Limit=1,
        )["Items"]
    )


def _clients() -> tuple[Any, Any]:  # pragma: no cover - boto3 is in the Lambda runtime
    import boto3  # noqa: PLC0415 - only the Lambda runtime has it; tests inject clients

    return boto3.client("dynamodb"), boto3.client("sqs")


def handler(
    event: object,
    context: object,
    clients: tuple[Any, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    ddb, sqs = clients or _clients()
    moment = now or datetime.now(UTC)
    checked = days_to_check(moment)
    due = [day for day in checked if _exists(ddb, os.environ["REPORTS_TABLE"], day_key(day))]
    marks = [pk for pk in MARK_KEYS if _exists(ddb, os.environ["GRIDS_TABLE"], pk)]
    sent = bool(due or marks)
    if sent:
        sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=os.environ["ROLL_BODY"])
    result = {"checked": checked, "due": due, "marks": marks, "sent": sent}
    print(json.dumps({"msg": "roll gate", "at": moment.isoformat(), **result}))
    return result
