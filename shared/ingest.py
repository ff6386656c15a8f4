"""The worker's use cases, free of Celery: store a report, recompute what is dirty, roll windows.

Each step is idempotent so that a redelivered message, a retry or a killed worker can only
repeat work, never double count: the report is written once by id, dirty markers are a set, and
grids are re-derived from stored reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.categories import ALL, CATEGORY_IDS
from shared.pyramid import Recomputer, layers_for
from shared.report import Report
from shared.storage import GridRepository, ReportRepository, partition_key
from shared.tiles import WINDOWS, Pyramid, layer_key

log = logging.getLogger("safetyheatmap.ingest")

SCHEDULED = "recompute-scheduled"
LEASE = "recompute-lease"
MARKERS_PER_CHUNK = 16
"""Partitions recomputed and flushed together; a run takes chunks until its time budget ends,
so a large backlog (after a stop at zero workers) never makes one run outlive its time limit."""


@dataclass
class IngestResult:
    stored: bool
    partition: str


def store(
    report: Report,
    reports: ReportRepository,
    grids: GridRepository,
    pyramid: Pyramid,
    now: datetime,
) -> IngestResult:
    x, y = pyramid.partition_of(report.lon, report.lat)
    partition = partition_key(pyramid.partition_zoom, x, y)
    stored = reports.store(report, partition)
    # Marked even for a duplicate: the first delivery may have died between the two writes.
    grids.mark_dirty(partition, layers_for(report.category, report.occurred_at, now))
    return IngestResult(stored=stored, partition=partition)


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


@dataclass
class RecomputeResult:
    ran: bool
    markers: int = 0
    tiles: int = 0
    more: bool = False


def recompute(
    grids: GridRepository,
    recomputer: Recomputer,
    owner: str,
    lease_s: float,
    now: datetime,
    computed_at: str,
    budget_s: float = 10.0,
    on_start: Callable[[], None] | None = None,
) -> RecomputeResult:
    """One run at a time (a lease), so two runs never interleave their tile writes.

    Works through the dirty markers in chunks until none is left or `budget_s` has passed;
    `more` then asks the caller to schedule the next run.
    """
    if not grids.acquire(LEASE, lease_s, owner):
        return RecomputeResult(ran=False)
    deadline = time.monotonic() + budget_s
    result = RecomputeResult(ran=True)
    try:
        # Released before reading markers: a report marked after this schedules its own run.
        grids.release(SCHEDULED)
        if on_start is not None:
            # Bookkeeping of reports stored before this point belongs to this run: anything
            # later has scheduled a run of its own, since the flag is now free.
            on_start()
        while markers := grids.dirty_markers(limit=MARKERS_PER_CHUNK):
            result.tiles += recomputer.run(markers, now, computed_at)
            for marker in markers:
                grids.clear_marker(marker)
            result.markers += len(markers)
            grids.put_meta("last_computed_at", computed_at)
            if time.monotonic() >= deadline:
                result.more = bool(grids.dirty_markers(limit=1))
                break
        return result
    finally:
        grids.release(LEASE, owner)


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
