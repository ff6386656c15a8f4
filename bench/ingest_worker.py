"""The worker of bench/ingest.py (a helper, not a benchmark): the recomputer, metered, and
what workers/tasks.py does around the use cases, on a fake clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ingest_store import MemoryGrids, MemoryReports
from ingest_units import FakeClock, Meter

from shared.geo.tiles import Pyramid
from shared.model.report import Report
from shared.store.grids import Marker
from shared.store.points import StoredPoint
from workers import ingest, recompute
from workers.background import BACKGROUND_SCHEDULED
from workers.pyramid import Recomputer
from workers.tilecache import StoredTiles

LEASE_S = 80.0  # the worker's task_time_limit + 5
TASK_TIME_LIMIT = 75.0


class MeteredRecomputer(Recomputer):
    """Tells the meter when an overview pass begins: `run_layers` called other than by `run`."""

    def __init__(self, *args: Any, meter: Meter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meter = meter
        self._fine = False

    def run(
        self,
        markers: list[Marker],
        now: datetime,
        computed_at: str,
        zooms: range | None = None,
        seen: dict[str, list[StoredPoint]] | None = None,
        stored: StoredTiles | None = None,
        times: bool = True,
    ) -> int:
        self._fine = True
        try:
            return super().run(markers, now, computed_at, zooms, seen, stored, times)
        finally:
            self._fine = False

    def run_layers(
        self,
        by_layer: dict[str, set[str]],
        now: datetime,
        computed_at: str,
        zooms: range | None = None,
        points_cache: dict[str, list[StoredPoint]] | None = None,
        stored: StoredTiles | None = None,
        times: bool = True,
    ) -> int:
        if not self._fine:
            self._meter.overview_begins()
        return super().run_layers(by_layer, now, computed_at, zooms, points_cache, stored, times)


# --- the worker ----------------------------------------------------------------------------------
class Worker:
    """What workers/tasks.py does around the use cases, on a fake clock."""

    def __init__(
        self,
        reports: MemoryReports,
        grids: MemoryGrids,
        pyramid: Pyramid,
        rec: Recomputer,
        meter: Meter,
        clock: FakeClock,
        now: datetime,
    ) -> None:
        self.reports, self.grids, self.pyramid, self.rec = reports, grids, pyramid, rec
        self.meter, self.clock, self.now = meter, clock, now
        self.computed_at = now.isoformat(timespec="milliseconds")
        self.overview_zoom = -1
        self.every_s = 0.0
        self.delayed: list[float] = []  # fake-clock times of scheduled overview runs

    def store(self, report: Report) -> None:
        ingest.store(report, self.reports, self.grids, self.pyramid, self.now)
        ingest.schedule_recompute(self.grids, lambda: None, str(uuid.uuid4()), 60.0)

    def recompute(self, background: bool = False) -> None:
        owner = str(uuid.uuid4())
        if background:
            self.grids.release(BACKGROUND_SCHEDULED)
        while True:
            result = recompute.recompute(
                self.grids,
                self.rec,
                owner,
                LEASE_S,
                self.now,
                self.computed_at,
                overview_zoom=self.overview_zoom,
                background_every_s=self.every_s,
                clock=self.clock,
            )
            assert result.ran, "the lease is free between runs"
            if not (result.more or result.background_more):
                break
            if result.background_more:
                self.meter.base = self.meter.bucket  # the next run goes on with the pass
            owner = str(uuid.uuid4())
        if result.background_in is not None:
            ttl = result.background_in + TASK_TIME_LIMIT
            if self.grids.acquire(BACKGROUND_SCHEDULED, ttl, owner):
                self.delayed.append(self.clock() + result.background_in + 0.5)
