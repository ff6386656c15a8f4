"""A recompute run: one at a time (a lease), through the dirty marks in chunks until none is
left or its time budget ends, each chunk planned, computed and written once
(``workers.pyramid``), then its marks deleted; the background pass in slices between and after
(``workers.background``).

Every step is idempotent: a run killed between a chunk's write and its marks' deletion only
repeats that chunk, as grids are re-derived from stored reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared.store.grids import GridRepository, Marker
from shared.store.points import StoredPoint
from workers.background import BackgroundPass, primary
from workers.ingest import SCHEDULED
from workers.pyramid import Recomputer
from workers.runlog import PointCache
from workers.tilecache import StoredTiles

LEASE = "recompute-lease"
WAITING = "recompute-waiting"
MARKERS_PER_CHUNK = 32
"""Partitions recomputed and flushed together; a run takes chunks until its time budget ends,
so a large backlog (after a stop at zero workers) never makes one run outlive its time limit.
A chunk's reports show once it is written, so smaller is fresher, down to where the per-chunk
costs (tiles that nearby partitions share, marks, the run log) take over. At 100 reports/s over
a city (bench/freshness.py): when every chunk read its neighbours, 64 gave p95 5.6 s where 16
gave 9.7 s; with a process's reads kept (workers.runlog), 32 gave p50 1.2-2.3 s and p95 3.1-3.6
s, against 1.7-1.8 and 3.1-4.2 s for 64 and 2.3-2.4 and 3.7-4.1 s for 16."""


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
    partitions: set[str] = field(default_factory=set)
    """The partitions this run recomputed (``workers.summary`` refreshes what they touch)."""


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
    cache: PointCache | None = None,
) -> RecomputeResult:
    """One run at a time (a lease), so two runs never interleave their tile writes.

    Works through the dirty marks in chunks until none is left or `budget_s` has passed;
    `more` then asks the caller to schedule the next run.

    With `background_every_s` > 0 a run does first what a viewer sees first: the `all`
    category's 30-day and all-time layers (``background.FIRST_WINDOWS``) at the fine zooms (above
    `overview_zoom`). The rest is recorded as background work (per layer) and done in a
    background pass, in slices that let the runs for new reports go between: the other
    layers' fine zooms at once when the run left no
    mark behind, else at most every `background_every_s` seconds; every layer's overview
    zooms, whose few coarse tiles each report in a region rewrites, at most every
    `background_every_s` seconds in any case. Under load that is most of a run's tiles, so
    the default map stays fresh within seconds, at a fraction of the writes.

    With a `cache` (the worker process's, ``workers.runlog``) the run starts from what this
    process read in its last run, brought up to date, instead of reading every partition again.
    """
    if not _take_lease(grids, owner, lease_s, waiter):
        return RecomputeResult(ran=False)
    started = time.monotonic()
    result = RecomputeResult(ran=True)
    zc = recomputer.compute_zoom
    deferred = background_every_s > 0 and 0 <= overview_zoom < zc
    fine = range(overview_zoom + 1, zc + 1) if deferred else None
    try:
        # Released before reading markers: a report marked after this schedules its own run.
        grids.release(SCHEDULED)
        seen: dict[str, list[StoredPoint]] = {} if cache is None else cache.begin()
        stored = StoredTiles()  # this run's: every tile write of the run goes through it
        background = BackgroundPass(
            grids,
            recomputer,
            result,
            now,
            computed_at,
            overview_zoom,
            background_every_s,
            clock,
            stored,
            budget_s=budget_s,
            layers_per_read=MARKERS_PER_CHUNK,  # a chunk's worth of background marks a read
        )
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
            _forget_unknown(seen, markers)
            if deferred:
                first = [m for m in (primary(m) for m in markers) if m.layers]
                result.tiles += recomputer.run(
                    first, now, computed_at, fine, seen, stored, times=False
                )
                # Recorded before the marks go, so a crash between leaves extra work, never
                # missing work.
                background.record(markers)
            else:
                result.tiles += recomputer.run(markers, now, computed_at, None, seen, stored)
            if cache is not None:
                cache.consumed(markers)  # before the marks go: other processes replay it
            grids.clear_markers(markers)
            _chunk_done(grids, result, markers, computed_at, on_visible)
            elapsed = time.monotonic() - started
            if elapsed >= budget_s:
                result.more = grids.has_dirty()
                break
            if deferred:
                background.between_chunks(seen, elapsed / budget_s)
        if deferred:
            # Under continuous load the loop ends on its budget with marks left (`more`); the
            # background pass still gets its slice when due, so it is never starved. Without
            # `more` the loop ended on finding no mark: the system is quiet.
            background.finish(seen, quiet=not result.more)
        return result
    finally:
        grids.release(LEASE, owner)


def _chunk_done(
    grids: GridRepository,
    result: RecomputeResult,
    markers: list[Marker],
    computed_at: str,
    on_visible: Callable[[dict[int, int]], None] | None,
) -> None:
    """After a chunk's marks are gone: the run's time, the count, the lags ended."""
    if not result.markers:  # the run's one time: written once, not once a chunk
        grids.put_meta("last_computed_at", computed_at)
    result.markers += len(markers)
    result.partitions.update(m.partition for m in markers)
    if on_visible is not None:
        # These reports now show on the map as it opens (every layer, without deferral; the
        # first layers at the fine zooms, with it).
        on_visible(_ticks(markers))


def _forget_unknown(seen: dict[str, list[StoredPoint]], markers: list[Marker]) -> None:
    """A partition whose marks do not carry their reports may lack some: read it afresh."""
    for marker in markers:
        if marker.points is None:
            seen.pop(marker.partition, None)


def _ticks(markers: list[Marker]) -> dict[int, int]:
    ticks: dict[int, int] = {}
    for marker in markers:
        for tick in marker.acked:
            ticks[tick] = ticks.get(tick, 0) + 1
    return ticks


def _take_lease(grids: GridRepository, owner: str, lease_s: float, waiter: bool) -> bool:
    if not grids.acquire(LEASE, lease_s, owner):
        return False
    if waiter:
        grids.release(WAITING, owner)  # this run reads marks from now on: another may wait
    return True
