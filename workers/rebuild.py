"""Recompute every grid from the stored reports (after a fix to the density code, say).

Marks nothing: it runs the workers' own :class:`~workers.pyramid.Recomputer` with a marker for
every partition that holds reports and every layer, a few partitions at a time. Each chunk
holds the recompute lease (``workers.recompute.LEASE``), so it never interleaves its tile
writes with a worker's recompute; workers may keep running. Grids are pure functions of the
stored reports, so a rebuild writes the same bytes an incremental recompute wrote (tiles it
would leave unchanged are not written at all). Listing the partitions is the one table scan
in the system.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.store.grids import GridRepository, Marker
from shared.store.keys import utc_now_iso
from shared.store.reports import ReportRepository
from workers.layers import all_layers
from workers.pyramid import Recomputer
from workers.recompute import LEASE

CHUNK = 4
"""Partitions per run: small enough to finish well inside the lease."""


@dataclass
class RebuildResult:
    partitions: int
    tiles: int
    seconds: float


def rebuild(
    reports: ReportRepository,
    grids: GridRepository,
    recomputer: Recomputer,
    *,
    lease_s: float,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
    wait_s: float = 120.0,
) -> RebuildResult:
    started = time.monotonic()
    partitions = reports.partitions()
    layers = frozenset(all_layers())
    owner = f"rebuild-{uuid.uuid4().hex[:8]}"
    tiles = 0
    if progress:
        progress(0, len(partitions))
    for start in range(0, len(partitions), chunk):
        part = partitions[start : start + chunk]
        deadline = time.monotonic() + wait_s
        while not grids.acquire(LEASE, lease_s, owner):
            if time.monotonic() > deadline:
                raise TimeoutError("a recompute held the lease too long; try again")
            time.sleep(0.2)
        try:
            computed_at = utc_now_iso()
            markers = [Marker(p, layers) for p in part]
            tiles += recomputer.run(markers, datetime.now(UTC), computed_at)
            grids.put_meta("last_computed_at", computed_at)
        finally:
            grids.release(LEASE, owner)
        if progress:
            progress(start + len(part), len(partitions))
    return RebuildResult(len(partitions), tiles, time.monotonic() - started)
