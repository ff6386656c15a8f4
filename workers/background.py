"""The background pass: what a run leaves for later, done in slices between and after its
chunks (``workers.recompute``).

A run does first what a viewer sees first (FIRST_WINDOWS of `all` at the fine zooms) and
records the rest per layer as background marks: the other layers' fine zooms and every layer's
overview zooms. The pass works them off in pieces, on a cadence, so the runs for new reports
go between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from shared.config.categories import ALL
from shared.store.grids import BackgroundMarker, GridRepository, Marker
from shared.store.keys import FINE, OVERVIEW
from shared.store.points import StoredPoint
from workers.pyramid import Recomputer
from workers.tilecache import StoredTiles

if TYPE_CHECKING:
    from workers.recompute import RecomputeResult

BACKGROUND_SHARE = 0.1
"""Background work a run does, at most, when load keeps it going to its budget, as a share of
the budget (2 s of a 20 s run); spread between its chunks in proportion to the time gone, where
it all came after the last chunk: the run that followed waited for it, and the reports marked
meanwhile with it (bench/freshness.py: the freshness tail). A share, so a longer run does not
starve the categories and overview zooms (of a second at least: a run with no budget left still
gets a piece)."""
BACKGROUND_PIECE = 4
"""Partitions of one layer recomputed in one go by the background pass, the rest re-marked:
a piece delays the run's next chunk by as long as it takes. A layer's piece also recomputes
its time atoms (four more layers), and at 16 partitions a piece held the default map for
seconds: bench/freshness.py --rate 100 --duration 45, p95 4.16 s at 16, 2.30 s at 4 (the
layers then catch up later after the load: 74 s -> 138 s)."""
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


def is_first(layer: str) -> bool:
    """Whether a run does the layer first (at the fine zooms), before the background pass."""
    category, _, window = layer.partition("|")
    return category == ALL and window in FIRST_WINDOWS


def primary(marker: Marker) -> Marker:
    """The layers a run does first: what the map and the API open on."""
    first = frozenset(layer for layer in marker.layers if is_first(layer))
    return Marker(marker.partition, first, marker.keys, marker.acked, marker.points)


class BackgroundPass:
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
        stored: StoredTiles | None,
        *,
        budget_s: float,
        layers_per_read: int,
    ) -> None:
        self._grids = grids
        self._slice_s = BACKGROUND_SHARE * max(budget_s, 1.0)
        self._per_read = layers_per_read
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
        fine_layers = {k: v for k, v in by_layer.items() if not is_first(k)}
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
        category's windows and all's are decided together: ``layers.expand_layers``, so a
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
            markers = grids.background_markers(self._per_read, BACKGROUND_PAGE)
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
                markers = grids.background_markers(self._per_read, BACKGROUND_PAGE)
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
