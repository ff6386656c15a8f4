"""Derive the tile pyramid from stored reports: only around what changed, never incremented.

For each dirty partition (a base tile of 64x64 compute-zoom cells) and layer (the dirty
partitions of one compute-zoom tile together, as one block: their bounding box; the plan is
``workers.plan``'s):

1. Compute zoom: re-read the reports of the partition and of its neighbours within twice the
   kernel's reach, linear-bin and smooth them, and overwrite the cells within reach of the
   partition in the stored density tiles. The partition's own per-cell report counts overwrite
   its block of the compute-zoom count tile.
2. Coarser zooms: each count cell is the sum of its four children, so the dirty block of every
   coarser count tile is re-derived from the finer one; densities there are smoothed from those
   counts (the kernel is at most a few cells wide, so simple binning suffices).
3. Finer zooms are never stored: the web interpolates them from the compute zoom, where the
   kernel spans >= 2.5 cells and the density is smooth.

Every value written is a pure function of the stored reports, so recomputing twice, or after a
duplicate delivery, writes the same bytes. All tiles a run touches are read once and written
once (``workers.tilecache``), which is what coalescing a burst of reports buys. Each value
shown passes the privacy masks (``workers.masks``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np

from shared.geo import density, privacy
from shared.geo.tiles import EARTH_CIRCUMFERENCE_M, MAX_LAT, TILE, Pyramid
from shared.store.grids import GridRepository, Marker
from shared.store.points import StoredPoint
from shared.store.reports import ReportRepository
from workers.layers import decision_order, expand_layers
from workers.masks import Masks
from workers.plan import Planner, Region, Step, cells
from workers.steppoints import StepReports
from workers.tilecache import StoredTiles, TileCache, read_region, write_region


class Recomputer:
    def __init__(
        self,
        reports: ReportRepository,
        grids: GridRepository,
        pyramid: Pyramid,
        rule: privacy.Rule | int,
    ) -> None:
        self._reports = reports
        self._grids = grids
        self._pyramid = pyramid
        self._planner = Planner(pyramid)
        self._masks = Masks(pyramid, rule if isinstance(rule, privacy.Rule) else privacy.Rule(rule))

    @property
    def compute_zoom(self) -> int:
        return self._pyramid.compute_zoom

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
        """Recompute everything the markers name; returns the number of tiles written.
        ``times=False`` leaves the time slices (``layers.expand_layers``) to a later run: the
        fast pass.

        Planned first, so every partition is queried once and every tile is read in one
        batch; then computed in memory; then the changed tiles are written in batches.

        `seen` holds what this run has read so far. A marked partition that an earlier chunk
        read gains the reports its marks carry (by id: a report stored after its mark was read
        may be in the read already); one whose marks do not carry them is queried afresh.
        Every report stored after a partition's read has a mark, written after the report, that
        this run reads later or that the next run finds. The neighbours come from `seen` as
        they are: a neighbour's report stored since its read has a mark of its own, read after
        this chunk's, and that mark's step rewrites every cell it reaches (the step's valid
        region is its block grown by the reach), so nothing is missed. Under load a run goes
        round the same hundred or so partitions, and re-reading them for every chunk was most
        of its calls (bench/freshness.py).
        """
        by_layer: dict[str, set[str]] = {}
        for marker in markers:
            for layer in marker.layers:
                by_layer.setdefault(layer, set()).add(marker.partition)
        carried = {marker.partition: marker.points for marker in markers}
        points = {}
        for key, known in (seen or {}).items():
            if key not in carried:
                points[key] = known
            elif (new := carried[key]) is not None:
                ids = {p.id for p in known}
                points[key] = known + [p for p in new if p.id not in ids]
        written = self.run_layers(by_layer, now, computed_at, zooms, points, stored, times)
        if seen is not None:
            seen.update(points)
        return written

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
        """Recompute the partitions of each layer at `zooms` (all stored zooms if None).

        A range without the compute zoom derives from the counts already stored one zoom
        finer, which is how overview zooms are refreshed in the background pass. Partitions
        in `points_cache` are not queried again (the background pass reuses what its run
        read: a report stored since has a dirty mark of its own, so nothing is missed);
        the others are queried and added to it. `stored`: the tiles of the run that holds the
        lease (StoredTiles), shared by its chunks and its background pieces, which all write
        through it; never kept from one run to the next.
        """
        by_layer = expand_layers(by_layer, times)
        planner = self._planner
        plans: dict[str, list[list[Step]]] = {}
        for layer, parts in sorted(by_layer.items()):
            levels = planner.plan(planner.fine_steps(parts))
            plans[layer] = [lv for lv in levels if zooms is None or lv[0].block.z in zooms]
        plans = {layer: plan for layer, plan in plans.items() if plan}
        zc = self._pyramid.compute_zoom
        fine = [plan[0] for plan in plans.values() if plan[0][0].block.z == zc]
        points = {} if points_cache is None else points_cache
        needed = {p for steps in fine for p in planner.partitions(steps)}
        points.update(self._reports.points_many(sorted(needed - points.keys())))
        reports = StepReports(planner, points, now)
        cache = TileCache(self._grids, stored)
        cache.prefetch(key for layer, plan in plans.items() for key in planner.keys(layer, plan))
        # Layers often hold the very same reports in a step (the 30-day and all-time layers of
        # a city whose reports are all recent): their smoothing is done once, by content.
        memo: dict[bytes, np.ndarray] = {}
        # Zoom by zoom, finest first: the privacy masks of a zoom read every layer's counts
        # there, so all of a zoom's counts are summed before any of its densities.
        by_zoom: dict[int, list[tuple[str, list[Step]]]] = {}
        for layer in sorted(plans, key=decision_order):
            for level in plans[layer]:
                by_zoom.setdefault(level[0].block.z, []).append((layer, level))
        masks: dict[Step, dict[str, np.ndarray]] = {}
        for z in sorted(by_zoom, reverse=True):
            if z != zc:
                for layer, level in by_zoom[z]:
                    _sum_counts(cache, layer, level)
            for layer, level in by_zoom[z]:
                for step in level:
                    if step not in masks:
                        masks[step] = self._masks.decide(cache, reports, step, times)
                    if z == zc:
                        _compute_fine(cache, reports, layer, step, memo, masks[step])
                    else:
                        _compute_coarse(cache, layer, step, memo, masks[step])
        return cache.flush(computed_at)


def _compute_fine(
    cache: TileCache,
    reports: StepReports,
    layer: str,
    step: Step,
    memo: dict[bytes, np.ndarray],
    masks: dict[str, np.ndarray],
) -> None:
    """Compute zoom: linear binning of the reports themselves, for accuracy."""
    lon, lat, unit = reports.of_layer(layer, step)
    u, v = cells(step, lon, lat)
    key = _digest("fine", step, u, v)
    if key not in memo:
        if u.size:
            values = density.density(u, v, step.source.shape, step.sigma, 1.0)
            values /= row_areas_km2(step.source)[:, None]
        else:  # most time slices of a step hold nothing
            values = np.zeros(step.source.shape)
        memo[key] = values
    r, b = step.reach, 2 * step.reach
    h, w = step.valid.shape
    shown = memo[key][r : r + h, r : r + w] * masks[layer]
    write_region(cache, "d", layer, step.valid, shown)
    counts = np.stack(
        [
            density.simple_bin(u, v, step.source.shape),
            density.simple_bin(u, v, step.source.shape, unit),
        ]
    )
    bh, bw = step.block.shape
    write_region(cache, "c", layer, step.block, counts[:, b : b + bh, b : b + bw])


def _sum_counts(cache: TileCache, layer: str, level: list[Step]) -> None:
    """Coarser zooms: each count cell is the sum of its four children."""
    for step in level:
        region = step.block.clip()
        fine = read_region(cache, "c", layer, region.children())
        counts = fine.reshape(2, fine.shape[1] // 2, 2, fine.shape[2] // 2, 2).sum(axis=(2, 4))
        write_region(cache, "c", layer, region, counts)


def _compute_coarse(
    cache: TileCache,
    layer: str,
    step: Step,
    memo: dict[bytes, np.ndarray],
    masks: dict[str, np.ndarray],
) -> None:
    """Coarser zooms: densities smoothed from the counts at this zoom's sigma."""
    counts = read_region(cache, "c", layer, step.source)[0]
    key = _digest("coarse", step, counts)
    if key not in memo:
        values = density.smooth(counts.astype(np.float64), step.sigma)
        values /= row_areas_km2(step.source)[:, None]
        memo[key] = values
    r = step.reach
    h, w = step.valid.shape
    shown = memo[key][r : r + h, r : r + w] * masks[layer]
    write_region(cache, "d", layer, step.valid, shown)


def row_areas_km2(region: Region) -> np.ndarray:
    """The ground area of one cell in each row of the region, at the row's own latitude.

    Reports per cell become reports per km^2 row by row. With one area per step (its block's
    centre's), a cell that two steps write (their reaches overlap) got the area of whichever
    ran last, so its density depended on which partitions were recomputed together: 12 % at
    the zoom-0 cell of London and Paris, whose rows there are degrees of latitude apart."""
    n = TILE << region.z
    rows = np.arange(region.r0, region.r1, dtype=np.float64) + 0.5
    lat = np.degrees(2 * np.arctan(np.exp((0.5 - rows / n) * 2 * np.pi)) - np.pi / 2)
    lat = np.clip(lat, -MAX_LAT, MAX_LAT)
    ground_km = EARTH_CIRCUMFERENCE_M / 1000.0 * np.cos(np.radians(lat)) / n
    return np.asarray(ground_km**2)


def _digest(kind: str, step: Step, *arrays: np.ndarray) -> bytes:
    """What a step's result depends on besides the settings: equal digests, equal results."""
    h = hashlib.blake2b(f"{kind}{step!r}".encode(), digest_size=16)
    for array in arrays:
        h.update(repr((array.dtype.str, array.shape)).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.digest()
