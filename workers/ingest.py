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

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import WINDOWS, Pyramid, layer_key
from shared.model.report import Report
from shared.store.storage import (
    FINE,
    OVERVIEW,
    BackgroundMarker,
    GridRepository,
    Marker,
    ReportRepository,
    StoredPoint,
    partition_key,
)
from workers.pyramid import Recomputer, StoredTiles, layers_for
from workers.runlog import PointCache

log = logging.getLogger("safetyheatmap.ingest")

SCHEDULED = "recompute-scheduled"
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
    cache: PointCache | None = None,
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
        background = _BackgroundPass(
            grids,
            recomputer,
            result,
            now,
            computed_at,
            overview_zoom,
            background_every_s,
            clock,
            stored,
            slice_s=BACKGROUND_SHARE * max(budget_s, 1.0),
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
                first = [m for m in (_primary(m) for m in markers) if m.layers]
                result.tiles += recomputer.run(first, now, computed_at, fine, seen, stored)
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


BACKGROUND_SHARE = 0.1
"""Background work a run does, at most, when load keeps it going to its budget, as a share of
the budget (2 s of a 20 s run); spread between its chunks in proportion to the time gone, where
it all came after the last chunk: the run that followed waited for it, and the reports marked
meanwhile with it (bench/freshness.py: the freshness tail). A share, so a longer run does not
starve the categories and overview zooms (of a second at least: a run with no budget left still
gets a piece)."""
BACKGROUND_PIECE = 16
"""Partitions of one layer recomputed in one go by the background pass, the rest re-marked:
a city's ~90 partitions of a category layer took 1.7-2.6 s at once, as long a wait for the
run's next chunk (bench/freshness.py)."""
BACKGROUND_PAGE = 100
"""Background mark items read at a time: enough for a slice's pieces. Under sustained load the
items pile up (every run marks each layer anew, a layer is visited every few minutes), and
reading the first thousand for every piece made a 120 s benchmark slow down as it went."""
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


class _BackgroundPass:
    """One run's background work: category layers at fine zooms at once when quiet, else on
    the cadence; overview zooms on the cadence only — each pass rewrites the same few coarse
    tiles, so at a report every few seconds one pass serves many reports (most of the DynamoDB
    write units saved). Its tiles are never the run's own (other layers, or coarser zooms,
    derived from the counts the run has written), so it may go between the run's chunks."""

    def __init__(
        self,
        grids: GridRepository,
        recomputer: Recomputer,
        result: RecomputeResult,
        now: datetime,
        computed_at: str,
        overview_zoom: int,
        every_s: float,
        clock: Callable[[], float],
        stored: StoredTiles | None = None,
        slice_s: float = 2.0,
    ) -> None:
        self._grids = grids
        self._slice_s = slice_s
        self._stored = stored
        self._recomputer = recomputer
        self._result = result
        self._now = now
        self._computed_at = computed_at
        self._overview = range(0, overview_zoom + 1)
        self._fine = range(overview_zoom + 1, recomputer.compute_zoom + 1)
        self._every_s = every_s
        self._clock = clock
        self._spent = 0.0
        self._since: float | None = None  # seconds since the last pass, read when first needed
        # Background marks this run has written and no pass has cleared since: a partition
        # going round again needs no second write (one UpdateItem per layer and chunk was a
        # sixth of a busy run's time).
        self._marked: dict[str, dict[str, set[str]]] = {OVERVIEW: {}, FINE: {}}

    def record(self, markers: list[Marker]) -> None:
        by_layer = _by_layer(markers)
        grids = self._grids
        grids.mark_background(_unmarked(by_layer, self._marked[OVERVIEW]), OVERVIEW)
        fine_layers = {k: v for k, v in by_layer.items() if not _first(k)}
        grids.mark_background(_unmarked(fine_layers, self._marked[FINE]), FINE)

    def between_chunks(self, seen: dict[str, list[StoredPoint]], share: float) -> None:
        """A due pass, in the run's share of its slice so far: a layer at a time."""
        allowed = self._slice_s * min(share, 1.0)
        if self._spent < allowed and self._due():
            self._work(seen, time.monotonic() + allowed - self._spent, quiet=False)

    def finish(self, seen: dict[str, list[StoredPoint]], quiet: bool) -> None:
        slice_end = time.monotonic() + max(0.0, self._slice_s - self._spent)
        waiting = self._work(seen, slice_end, quiet)
        if waiting and not self._due():
            self._result.background_in = self._every_s - self._elapsed()

    def _piece(self, markers: list[BackgroundMarker], seen: dict[str, list[StoredPoint]]) -> None:
        """Up to BACKGROUND_PIECE partitions of each layer of one kind, in one recompute (a
        category's windows and all's are decided together: ``pyramid.expand_layers``, so a
        layer at a time would decide them again for every layer); the rest re-marked for a
        later piece."""
        grids = self._grids
        kind = markers[0].kind
        by_layer: dict[str, set[str]] = {}
        rests: dict[str, set[str]] = {}
        for marker in markers:
            partitions = sorted(marker.partitions)
            by_layer.setdefault(marker.layer, set()).update(partitions[:BACKGROUND_PIECE])
            if partitions[BACKGROUND_PIECE:]:
                rests.setdefault(marker.layer, set()).update(partitions[BACKGROUND_PIECE:])
        zooms = self._overview if kind == OVERVIEW else self._fine
        self._result.tiles += self._recomputer.run_layers(
            by_layer, self._now, self._computed_at, zooms, seen, self._stored
        )
        if rests:
            grids.mark_background(rests, kind)  # before the old items go
        for marker in markers:
            grids.clear_background(marker)
            # Cleared: a later chunk of this run marks these partitions again.
            done = by_layer[marker.layer]
            self._marked[kind].get(marker.layer, set()).difference_update(done)
        self._result.background_layers += len(markers)

    def _elapsed(self) -> float:
        if self._since is None:
            last = self._grids.get_meta(BACKGROUND_AT)
            self._since = self._clock() - float(last) if last else float("inf")
        return self._since

    def _due(self) -> bool:
        return self._elapsed() >= self._every_s

    def _work(self, seen: dict[str, list[StoredPoint]], slice_end: float, quiet: bool) -> bool:
        """Layers until the slice ends (one at least); True if some wait for the cadence."""
        result, grids = self._result, self._grids
        started = time.monotonic()
        due = self._due()
        waiting = False
        try:
            markers = grids.background_markers(MARKERS_PER_CHUNK, BACKGROUND_PAGE)
            if not markers:
                return False  # nothing waits: the cadence keeps its time for the next marks
            while markers:
                todo = [m for m in markers if due or (quiet and m.kind == FINE)]
                waiting = waiting or len(todo) < len(markers)
                for kind in (FINE, OVERVIEW):  # finer zooms first: coarser ones sum them
                    group = [m for m in todo if m.kind == kind]
                    if not group:
                        continue
                    if result.background_layers and time.monotonic() >= slice_end:
                        result.background_more = True  # the next run goes on from here
                        return waiting
                    self._piece(group, seen)
                if not todo:
                    break
                markers = grids.background_markers(MARKERS_PER_CHUNK, BACKGROUND_PAGE)
            result.background_more = False
            if due:
                grids.put_meta(BACKGROUND_AT, f"{self._clock():.3f}")
                grids.release(BACKGROUND_SCHEDULED)
                self._since = 0.0
            return waiting
        finally:
            self._spent += time.monotonic() - started


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
