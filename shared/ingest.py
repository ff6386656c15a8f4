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
from shared.storage import (
    FINE,
    OVERVIEW,
    GridRepository,
    Marker,
    ReportRepository,
    StoredPoint,
    partition_key,
)
from shared.tiles import WINDOWS, Pyramid, layer_key

log = logging.getLogger("safetyheatmap.ingest")

SCHEDULED = "recompute-scheduled"
LEASE = "recompute-lease"
WAITING = "recompute-waiting"
MARKERS_PER_CHUNK = 64
"""Partitions recomputed and flushed together; a run takes chunks until its time budget ends,
so a large backlog (after a stop at zero workers) never makes one run outlive its time limit.
A chunk's cost is mostly per tile and per neighbouring partition read, which nearby partitions
share: at 100 reports/s over a city (bench/freshness.py) 64 gave p95 5.6 s where 16 gave 9.7 s
(256: 4.6 s, but a chunk of 256 scattered partitions could take most of a run's budget)."""


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
    acked: dict[str, list[int]] = {}
    # What each mark carries of its reports: exactly what was stored, or nothing (None) where
    # a report was not written from this message (a keyed id seen before: the first body wins,
    # and the run reads the partition afresh).
    carried: dict[str, list[StoredPoint] | None] = {}
    for report, partition, new in zip(batch, partitions, stored, strict=True):
        # Marked even for a duplicate: the first delivery may have died before its mark.
        marks.setdefault(partition, set()).update(
            layers_for(report.category, report.occurred_at, now)
        )
        if new:
            acked.setdefault(partition, []).append(int(report.received_at.timestamp() * 10))
            points = carried.setdefault(partition, [])
            if points is not None:
                points.append(StoredPoint.of(report))
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


def wait_for_lease(grids: GridRepository, owner: str, ttl_s: float) -> bool:
    """A trigger that found the lease held: True if it is to retry until the lease is free.

    One trigger waits (retrying each second) and the others go. Each run started after the
    holder reads every mark made before it, so one waiter is enough, and a run that starts
    frees the waiter's place (``recompute(waiter=True)``) for triggers that come during it.
    Under load, triggers from stores and continuations arrive faster than runs end: every
    one of them retrying each second (a send, a receive, a delete and a conditional write)
    had grown to five at once (seen in bench/freshness.py).
    """
    return grids.acquire(WAITING, ttl_s, owner, renew=True)


@dataclass
class RecomputeResult:
    ran: bool
    markers: int = 0
    tiles: int = 0
    more: bool = False
    """Dirty marks are left (the budget ran out): schedule the next run at once."""
    background_layers: int = 0
    background_more: bool = False
    """The background pass was cut by its slice: schedule the next run at once to go on."""
    background_in: float | None = None
    """Background work waits for its cadence: schedule a run this many seconds from now."""


def recompute(
    grids: GridRepository,
    recomputer: Recomputer,
    owner: str,
    lease_s: float,
    now: datetime,
    computed_at: str,
    budget_s: float = 10.0,
    on_visible: Callable[[dict[int, int]], None] | None = None,
    overview_zoom: int = -1,
    background_every_s: float = 0.0,
    clock: Callable[[], float] = time.time,
    waiter: bool = False,
) -> RecomputeResult:
    """One run at a time (a lease), so two runs never interleave their tile writes.

    Works through the dirty marks in chunks until none is left or `budget_s` has passed;
    `more` then asks the caller to schedule the next run.

    With `background_every_s` > 0 a run does first what a viewer sees first: the `all`
    category's 30-day and all-time layers (FIRST_WINDOWS) at the fine zooms (above
    `overview_zoom`). The rest is recorded as background work (per layer) and done in a
    background pass, in slices that let the runs for new reports go between: the other
    layers' fine zooms at once when the run left no
    mark behind, else at most every `background_every_s` seconds; every layer's overview
    zooms, whose few coarse tiles each report in a region rewrites, at most every
    `background_every_s` seconds in any case. Under load that is most of a run's tiles, so
    the default map stays fresh within seconds, at a fraction of the writes.
    """
    if not _take_lease(grids, owner, lease_s, waiter):
        return RecomputeResult(ran=False)
    started = time.monotonic()
    deadline = started + budget_s
    result = RecomputeResult(ran=True)
    zc = recomputer.compute_zoom
    deferred = background_every_s > 0 and 0 <= overview_zoom < zc
    fine = range(overview_zoom + 1, zc + 1) if deferred else None
    try:
        # Released before reading markers: a report marked after this schedules its own run.
        grids.release(SCHEDULED)
        seen: dict[str, list[StoredPoint]] = {}
        # Background marks this run has written: only this run's background pass, after the
        # loop, clears them, so a partition going round again needs no second write (one
        # UpdateItem per layer and chunk was a sixth of a busy run's time).
        marked: dict[str, dict[str, set[str]]] = {OVERVIEW: {}, FINE: {}}
        cursor = ""
        while True:
            # Round the key range, chunk after chunk, from where the last chunk stopped: under
            # load the first partitions are marked again before the chunk is done, and starting
            # over would serve them again and again while the last ones wait for the load to
            # end (seen: 49 s at 100 reports/s). Going round, a mark waits one round at most.
            markers = grids.dirty_markers(limit=MARKERS_PER_CHUNK, after=cursor)
            if not markers and cursor:
                cursor = ""
                markers = grids.dirty_markers(limit=MARKERS_PER_CHUNK)
            if not markers:
                break
            cursor = markers[-1].partition
            if deferred:
                first = [m for m in (_primary(m) for m in markers) if m.layers]
                result.tiles += recomputer.run(first, now, computed_at, fine, seen)
                # Recorded before the marks go, so a crash between leaves extra work, never
                # missing work.
                by_layer = _by_layer(markers)
                grids.mark_background(_unmarked(by_layer, marked[OVERVIEW]), OVERVIEW)
                fine_layers = {k: v for k, v in by_layer.items() if not _first(k)}
                grids.mark_background(_unmarked(fine_layers, marked[FINE]), FINE)
            else:
                result.tiles += recomputer.run(markers, now, computed_at, None, seen)
            grids.clear_markers(markers)
            result.markers += len(markers)
            grids.put_meta("last_computed_at", computed_at)
            if on_visible is not None:
                # These reports now show on the map as it opens (every layer, without
                # deferral; the first layers at the fine zooms, with it).
                ticks: dict[int, int] = {}
                for marker in markers:
                    for tick in marker.acked:
                        ticks[tick] = ticks.get(tick, 0) + 1
                on_visible(ticks)
            if time.monotonic() >= deadline:
                result.more = grids.has_dirty()
                break
        if deferred:
            # Under continuous load the loop ends on its budget with marks left (`more`); the
            # background pass still gets its slice when due, so it is never starved. Without
            # `more` the loop ended on finding no mark: the system is quiet.
            quiet = not result.more
            slice_end = time.monotonic() + BACKGROUND_SLICE_S
            _background(
                grids,
                recomputer,
                result,
                now,
                computed_at,
                slice_end,
                overview_zoom,
                background_every_s,
                quiet,
                clock,
                seen,
            )
        return result
    finally:
        grids.release(LEASE, owner)


def _take_lease(grids: GridRepository, owner: str, lease_s: float, waiter: bool) -> bool:
    if not grids.acquire(LEASE, lease_s, owner):
        return False
    if waiter:
        grids.release(WAITING, owner)  # this run reads marks from now on: another may wait
    return True


BACKGROUND_SLICE_S = 1.0
"""Longest stretch of one run spent on background work; runs for new reports go between."""
BACKGROUND_AT = "background_at"
BACKGROUND_SCHEDULED = "background-scheduled"


FIRST_WINDOWS = frozenset({"30d", "all"})
"""The windows a run does first, with the `all` category: the map opens on 30 days (the
frontend's default window) and heatmap/get without a window means all time. The other windows
wait for the background pass like the categories: half the tiles of a busy run."""


def _first(layer: str) -> bool:
    category, _, window = layer.partition("|")
    return category == ALL and window in FIRST_WINDOWS


def _primary(marker: Marker) -> Marker:
    """The layers a run does first: what the map and the API open on."""
    first = frozenset(layer for layer in marker.layers if _first(layer))
    return Marker(marker.partition, first, marker.keys, marker.acked, marker.points)


def _background(
    grids: GridRepository,
    recomputer: Recomputer,
    result: RecomputeResult,
    now: datetime,
    computed_at: str,
    slice_end: float,
    overview_zoom: int,
    every_s: float,
    quiet: bool,
    clock: Callable[[], float],
    seen: dict[str, list[StoredPoint]],
) -> None:
    """Category layers at fine zooms: at once when quiet, else on the cadence. Overview zooms:
    on the cadence only — each pass rewrites the same few coarse tiles, so at a report every
    few seconds one pass serves many reports (most of the DynamoDB write units saved)."""
    markers = grids.background_markers(limit=MARKERS_PER_CHUNK)
    if not markers:
        return
    last = grids.get_meta(BACKGROUND_AT)
    elapsed = clock() - float(last) if last else float("inf")
    due = elapsed >= every_s
    overview = range(0, overview_zoom + 1)
    fine = range(overview_zoom + 1, recomputer.compute_zoom + 1)
    waiting = False
    while markers:
        todo = [m for m in markers if due or (quiet and m.kind == FINE)]
        waiting = waiting or len(todo) < len(markers)
        for marker in todo:
            if result.background_layers and time.monotonic() >= slice_end:
                result.background_more = True  # the next run goes on where this one stopped
                return
            zooms = overview if marker.kind == OVERVIEW else fine
            result.tiles += recomputer.run_layers(
                {marker.layer: set(marker.partitions)}, now, computed_at, zooms, seen
            )
            grids.clear_background(marker)
            result.background_layers += 1
        if len(markers) < MARKERS_PER_CHUNK or not todo:
            break
        markers = grids.background_markers(limit=MARKERS_PER_CHUNK)
    if due:
        grids.put_meta(BACKGROUND_AT, f"{clock():.3f}")
        grids.release(BACKGROUND_SCHEDULED)
    elif waiting:
        result.background_in = every_s - elapsed


def _unmarked(by_layer: dict[str, set[str]], marked: dict[str, set[str]]) -> dict[str, set[str]]:
    """The partitions of each layer not marked yet; records them as marked."""
    out = {}
    for layer, partitions in by_layer.items():
        done = marked.setdefault(layer, set())
        new = partitions - done
        if new:
            out[layer] = new
            done |= new
    return out


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
