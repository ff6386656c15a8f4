"""The worker's use cases around a report, free of Celery: store a batch and mark what it
dirtied, schedule the recompute (``workers.recompute``), roll windows.

Each step is idempotent so that a redelivered message, a retry or a killed worker can only
repeat work, never double count: the report is written once by id, dirty markers are a set, and
grids are re-derived from stored reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import WINDOWS, Pyramid, layer_key
from shared.model.report import Report, ValidationError
from shared.store.grids import GridRepository
from shared.store.keys import partition_key
from shared.store.points import StoredPoint
from shared.store.reports import ReportRepository
from workers.layers import layers_for

log = logging.getLogger("safetyheatmap.ingest")

SCHEDULED = "recompute-scheduled"
"""The flag of a pending recompute: set by the first store of a burst, cleared by the run."""


@dataclass
class IngestResult:
    stored: bool
    partition: str


@dataclass(frozen=True)
class Received:
    """One message of reports (``store_reports``) as a pass gets it: picklable, for the pool
    process that stores it (``workers.factory.BatchedStore``)."""

    id: str
    args: Any
    retries: int = 0
    receives: int = 0

    def items(self) -> list[Any] | None:
        """Its batch (the task's one argument), None if it carries none."""
        args = self.args
        if isinstance(args, list | tuple) and len(args) == 1 and isinstance(args[0], list):
            return args[0] or None
        return None


ACK, REJECT = "ack", "reject"
"""A message's fate after its pass: deleted, or left to SQS (back after the visibility timeout,
to the DLQ after MAX_RECEIVES receives)."""


def decode(items: list[Any]) -> tuple[list[Report], list[str]]:
    """The valid reports of a batch, and what is wrong with each of its other items."""
    reports: list[Report] = []
    errors: list[str] = []
    for item in items:
        try:
            reports.append(Report.from_message(item["report"]))
        except (ValidationError, TypeError, ValueError, KeyError) as exc:
            errors.append(str(exc))
    return reports, errors


def store(
    report: Report,
    reports: ReportRepository,
    grids: GridRepository,
    pyramid: Pyramid,
    now: datetime,
    distinct: bool = True,
) -> IngestResult:
    return store_many([report], reports, grids, pyramid, now, distinct)[0]


def store_many(
    batch: list[Report],
    reports: ReportRepository,
    grids: GridRepository,
    pyramid: Pyramid,
    now: datetime,
    distinct: bool = True,
) -> list[IngestResult]:
    """Store a batch, then mark each partition dirty once with the union of its layers.

    With ``distinct`` (PRIVACY_DISTINCT_SUBMITTERS) only the first report of each submitter
    pseudonym counts towards the privacy threshold (``ReportRepository.claim_units``)."""
    partitions = [
        partition_key(pyramid.partition_zoom, *pyramid.partition_of(r.lon, r.lat)) for r in batch
    ]
    units = reports.claim_units(batch) if distinct else [True] * len(batch)
    stored = reports.store_many(list(zip(batch, partitions, strict=True)), units)
    marks: dict[str, set[str]] = {}
    acked: dict[str, list[int]] = {}
    # What each mark carries of its reports: exactly what was stored, or nothing (None) where
    # a report was not written from this message (a keyed id seen before: the first body wins,
    # and the run reads the partition afresh).
    carried: dict[str, list[StoredPoint] | None] = {}
    for report, partition, new, unit in zip(batch, partitions, stored, units, strict=True):
        # Marked even for a duplicate: the first delivery may have died before its mark.
        marks.setdefault(partition, set()).update(
            layers_for(report.category, report.occurred_at, now)
        )
        if new:
            acked.setdefault(partition, []).append(int(report.received_at.timestamp() * 10))
            points = carried.setdefault(partition, [])
            if points is not None:
                points.append(StoredPoint.of(report, unit))
        else:
            carried[partition] = None
    # After the reports: a run that sees a mark must find its reports.
    grids.mark_dirty_many(marks, acked, {p: v for p, v in carried.items() if v is not None})
    return [IngestResult(s, p) for s, p in zip(stored, partitions, strict=True)]


def schedule_recompute(
    grids: GridRepository, send: Callable[[], None], owner: str, ttl_s: float
) -> bool:
    """At most one pending recompute: a burst of reports shares it (coalescing)."""
    if not grids.acquire(SCHEDULED, ttl_s, owner):
        return False
    try:
        send()
    except Exception:
        grids.release(SCHEDULED, owner)
        raise
    return True


def roll_windows(reports: ReportRepository, grids: GridRepository, now: datetime) -> int:
    """Mark partitions whose reports left a window since the last roll; returns their count."""
    last_raw = grids.get_meta("rolled_at")
    last = datetime.fromisoformat(last_raw) if last_raw else now - timedelta(days=1)
    marked = 0
    for window, span in WINDOWS.items():
        if span is None:
            continue
        day = (last - span).date()
        end = (now - span).date()
        layers = [layer_key(c, window) for c in (ALL, *sorted(CATEGORY_IDS))]
        while day <= end:
            for partition in reports.partitions_of_day(day.isoformat()):
                grids.mark_dirty(partition, layers)
                marked += 1
            day += timedelta(days=1)
    grids.put_meta("rolled_at", now.isoformat())
    return marked
