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
from shared.storage import GridRepository, Marker, ReportRepository, partition_key
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
    return store_many([report], reports, grids, pyramid, now)[0]


def store_many(
    batch: list[Report],
    reports: ReportRepository,
    grids: GridRepository,
    pyramid: Pyramid,
    now: datetime,
) -> list[IngestResult]:
    """Store a batch, then mark each partition dirty once with the union of its layers."""
    partitions = [
        partition_key(pyramid.partition_zoom, *pyramid.partition_of(r.lon, r.lat)) for r in batch
    ]
    stored = reports.store_many(list(zip(batch, partitions, strict=True)))
    marks: dict[str, set[str]] = {}
    for report, partition in zip(batch, partitions, strict=True):
        # Marked even for a duplicate: the first delivery may have died before its mark.
        marks.setdefault(partition, set()).update(
            layers_for(report.category, report.occurred_at, now)
        )
    # After the reports: a run that sees a mark must find its reports.
    grids.mark_dirty_many(marks)
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


@dataclass
class RecomputeResult:
    ran: bool
    markers: int = 0
    tiles: int = 0
    more: bool = False
    """Fine markers are left (the budget ran out): schedule the next run at once."""
    overview_layers: int = 0
    overview_more: bool = False
    """The overview pass was cut by the budget: schedule the next run at once to go on."""
    overview_in: float | None = None
    """Overview zooms wait for their cadence: schedule a run this many seconds from now."""


def recompute(
    grids: GridRepository,
    recomputer: Recomputer,
    owner: str,
    lease_s: float,
    now: datetime,
    computed_at: str,
    budget_s: float = 10.0,
    on_start: Callable[[], None] | None = None,
    overview_zoom: int = -1,
    overview_every_s: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> RecomputeResult:
    """One run at a time (a lease), so two runs never interleave their tile writes.

    Works through the dirty markers in chunks until none is left or `budget_s` has passed;
    `more` then asks the caller to schedule the next run. With `overview_every_s` > 0, the
    chunks stop above `overview_zoom`: the few coarse tiles every report touches (each covers
    a region) are the same for every run, so they are refreshed at most every
    `overview_every_s` seconds in a pass of their own, sliced by layer, instead of being
    rewritten by every run — most of a busy run's writes, and of its DynamoDB bill.
    """
    if not grids.acquire(LEASE, lease_s, owner):
        return RecomputeResult(ran=False)
    started = time.monotonic()
    deadline = started + budget_s
    result = RecomputeResult(ran=True)
    zc = recomputer.compute_zoom
    deferred = overview_every_s > 0 and 0 <= overview_zoom < zc
    fine = range(overview_zoom + 1, zc + 1) if deferred else None
    try:
        # Released before reading markers: a report marked after this schedules its own run.
        grids.release(SCHEDULED)
        if on_start is not None:
            # Bookkeeping of reports stored before this point belongs to this run: anything
            # later has scheduled a run of its own, since the flag is now free.
            on_start()
        while markers := grids.dirty_markers(limit=MARKERS_PER_CHUNK):
            result.tiles += recomputer.run(markers, now, computed_at, zooms=fine)
            if deferred:
                # Recorded before the fine markers go, so a crash between leaves extra work,
                # never missing work.
                grids.mark_overview(_by_layer(markers))
            grids.clear_markers(markers)
            result.markers += len(markers)
            grids.put_meta("last_computed_at", computed_at)
            if time.monotonic() >= deadline:
                result.more = bool(grids.dirty_markers(limit=1))
                break
        if deferred and not result.more:
            slice_end = min(deadline, time.monotonic() + OVERVIEW_SLICE_S)
            _overview(
                grids,
                recomputer,
                result,
                now,
                computed_at,
                slice_end,
                overview_zoom,
                overview_every_s,
                clock,
            )
        return result
    finally:
        grids.release(LEASE, owner)


OVERVIEW_SLICE_S = 1.0
"""Longest stretch of one run spent on overview zooms; fine runs for new reports go between."""
OVERVIEW_AT = "overview_at"
OVERVIEW_SCHEDULED = "overview-scheduled"


def _overview(
    grids: GridRepository,
    recomputer: Recomputer,
    result: RecomputeResult,
    now: datetime,
    computed_at: str,
    slice_end: float,
    overview_zoom: int,
    every_s: float,
    clock: Callable[[], float],
) -> None:
    markers = grids.overview_markers(limit=MARKERS_PER_CHUNK)
    if not markers:
        return
    last = grids.get_meta(OVERVIEW_AT)
    elapsed = clock() - float(last) if last else float("inf")
    if elapsed < every_s:
        result.overview_in = every_s - elapsed
        return
    coarse = range(0, overview_zoom + 1)
    while markers:
        for marker in markers:
            if result.overview_layers and time.monotonic() >= slice_end:
                result.overview_more = True  # the next run goes on where this one stopped
                return
            result.tiles += recomputer.run_layers(
                {marker.layer: set(marker.partitions)}, now, computed_at, coarse
            )
            grids.clear_overview(marker)
            result.overview_layers += 1
        markers = grids.overview_markers(limit=MARKERS_PER_CHUNK)
    grids.put_meta(OVERVIEW_AT, f"{clock():.3f}")
    grids.release(OVERVIEW_SCHEDULED)


def _by_layer(markers: list[Marker]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for marker in markers:
        for layer in marker.layers:
            out.setdefault(layer, set()).add(marker.partition)
    return out


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
