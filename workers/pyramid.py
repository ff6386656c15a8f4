"""Derive the tile pyramid from stored reports: only around what changed, never incremented.

For each dirty partition (a base tile of 64x64 compute-zoom cells) and layer (the dirty
partitions of one compute-zoom tile together, as one block: their bounding box):

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
once, which is what coalescing a burst of reports buys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo import density, gridcodec, privacy
from shared.geo.tiles import (
    APRON,
    EARTH_CIRCUMFERENCE_M,
    MAX_LAT,
    STORED,
    TILE,
    WINDOWS,
    Pyramid,
    layer_key,
    lonlat_to_world,
    tile_center_lat,
    windows_containing,
)
from shared.store.storage import (
    GridRepository,
    Marker,
    ReportRepository,
    StoredPoint,
    grid_key,
    parse_partition,
    partition_key,
)


def all_layers() -> list[str]:
    return [layer_key(c, w) for c in (ALL, *sorted(CATEGORY_IDS)) for w in WINDOWS]


def layers_for(category: str, occurred_at: datetime, now: datetime) -> set[str]:
    """The layers that hold a report (``expand_layers`` adds those whose masks follow)."""
    return {layer_key(c, w) for c in (ALL, category) for w in windows_containing(occurred_at, now)}


@dataclass(frozen=True)
class Region:
    """A rectangle of global cells at one zoom: rows [r0, r1), cols [c0, c1)."""

    z: int
    r0: int
    c0: int
    r1: int
    c1: int

    def grow(self, cells: int) -> Region:
        return Region(self.z, self.r0 - cells, self.c0 - cells, self.r1 + cells, self.c1 + cells)

    def clip(self) -> Region:
        n = TILE << self.z
        return Region(self.z, max(self.r0, 0), max(self.c0, 0), min(self.r1, n), min(self.c1, n))

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    def parent(self) -> Region:
        return Region(self.z - 1, self.r0 // 2, self.c0 // 2, -(-self.r1 // 2), -(-self.c1 // 2))

    def tiles(self, apron: int = 0) -> list[tuple[int, int]]:
        """Tiles (x, y) whose stored extent (with apron) intersects the region."""
        n = 1 << self.z
        ys = range(max((self.r0 - apron) // TILE, 0), min((self.r1 - 1 + apron) // TILE, n - 1) + 1)
        xs = range(max((self.c0 - apron) // TILE, 0), min((self.c1 - 1 + apron) // TILE, n - 1) + 1)
        return [(x, y) for y in ys for x in xs]


class StoredTiles:
    """The stored bytes of the tiles one recompute run has read or written (None: no tile).

    Under the lease nothing else writes tiles, so what a run wrote is what is stored, and its
    next chunk need not read it back: under load the chunks go round the same city, and
    reading back the tiles the previous chunks wrote was a fifth of a chunk's time
    (bench/freshness.py). Bytes, not arrays: an encoded tile is a few KB, a decoded density
    tile 540 KB. Past `limit_bytes` it forgets everything and reads again.
    """

    def __init__(self, limit_bytes: int = 64 << 20) -> None:
        self._blobs: dict[str, bytes | None] = {}
        self._bytes = 0
        self._limit = limit_bytes

    def get(self, key: str) -> tuple[bool, bytes | None]:
        """(known, blob)."""
        if key in self._blobs:
            return True, self._blobs[key]
        return False, None

    def put(self, key: str, blob: bytes | None) -> None:
        old = self._blobs.get(key)
        self._bytes += len(blob or b"") - len(old or b"")
        self._blobs[key] = blob
        if self._bytes > self._limit:
            self._blobs.clear()
            self._bytes = 0


class TileCache:
    """Tiles read in one batch per chunk, modified in memory, and only changed ones written.

    With `stored` (the run's), tiles it knows are not read again, and what is written is added.
    """

    def __init__(self, grids: GridRepository, stored: StoredTiles | None = None) -> None:
        self._grids = grids
        self._stored = stored
        self._tiles: dict[str, np.ndarray | None] = {}
        self._original: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        # Fetched, not decoded yet: a step reads every category's count tiles to decide its
        # masks, and most of those it never opens (the category is absent from the step).
        self._undecoded: dict[str, bytes] = {}

    def prefetch(self, keys: Iterable[str]) -> None:
        missing = []
        for key in dict.fromkeys(keys):
            if key in self._tiles or key in self._undecoded:
                continue
            known, blob = self._stored.get(key) if self._stored is not None else (False, None)
            if known:
                self._keep(key, blob)
            else:
                missing.append(key)
        if not missing:
            return
        # Strongly consistent: the chunk writes these tiles back, and a copy from before the
        # previous chunk's write would undo it where this chunk does not recompute.
        found = self._grids.get_many(missing, consistent=True)
        for key in missing:
            blob = found[key][0] if key in found else None
            self._keep(key, blob)
            if self._stored is not None:
                self._stored.put(key, blob)

    def _keep(self, key: str, blob: bytes | None) -> None:
        if blob is None:
            self._tiles[key] = None
        else:
            self._original[key] = blob
            self._undecoded[key] = blob

    def peek(self, key: str) -> np.ndarray | None:
        """The tile as it stands in this run, or None where none exists (nothing is made)."""
        self.prefetch([key])
        blob = self._undecoded.pop(key, None)
        if blob is not None:
            self._tiles[key] = gridcodec.decode(blob)
        return self._tiles[key]

    def same(self, a: str, b: str) -> bool:
        """Whether two tiles hold the same stored bytes and neither was changed in this run."""
        self.prefetch([a, b])
        if a in self._dirty or b in self._dirty:
            return False
        return self._original.get(a) == self._original.get(b)

    def replace(self, key: str, tile: np.ndarray) -> None:
        self._tiles[key] = tile

    def get(self, key: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        tile = self.peek(key)
        if tile is None:
            tile = np.zeros(shape, dtype=dtype)
            self._tiles[key] = tile
        return tile

    def mark(self, key: str) -> None:
        self._dirty.add(key)

    def flush(self, computed_at: str) -> int:
        """Write what changed; an empty tile that never existed is not created."""
        blobs = {}
        for key in sorted(self._dirty):
            tile = self._tiles[key]
            assert tile is not None
            if key not in self._original and not tile.any():
                continue
            blob = (
                gridcodec.encode_counts(tile)
                if key.startswith("c#")
                else gridcodec.encode_density(tile)
            )
            if blob != self._original.get(key):
                blobs[key] = blob
        self._grids.put_many(blobs, computed_at)
        if self._stored is not None:
            for key, blob in blobs.items():  # once stored: a failed write raises before this
                self._stored.put(key, blob)
        self._dirty.clear()
        return len(blobs)


_CATEGORIES = sorted(CATEGORY_IDS)
_CATEGORY_INDEX = {c: i for i, c in enumerate(_CATEGORIES)}


@dataclass(frozen=True)
class StepPoints:
    """A step's reports as arrays: position, category (index into the sorted ids), the
    shortest window that holds it (index into WINDOWS), unit weight (``shared.geo.privacy``)."""

    lon: np.ndarray
    lat: np.ndarray
    cat: np.ndarray
    ring: np.ndarray
    unit: np.ndarray


@dataclass(frozen=True)
class Step:
    """One smoothing step: density over `valid`, from counts or points over `source`."""

    block: Region
    source: Region
    valid: Region
    sigma: float
    reach: int


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
        self._rule = rule if isinstance(rule, privacy.Rule) else privacy.Rule(rule)
        self._step_points: dict[Step, StepPoints] = {}

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
    ) -> int:
        """Recompute everything the markers name; returns the number of tiles written.

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
        written = self.run_layers(by_layer, now, computed_at, zooms, points, stored)
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
        by_layer = expand_layers(by_layer)
        self._step_points = {}  # made anew each call: the points may have changed
        plans: dict[str, list[list[Step]]] = {}
        for layer, parts in sorted(by_layer.items()):
            levels = self._plan(self._fine_steps(parts))
            plans[layer] = [lv for lv in levels if zooms is None or lv[0].block.z in zooms]
        plans = {layer: plan for layer, plan in plans.items() if plan}
        zc = self._pyramid.compute_zoom
        fine = [plan[0] for plan in plans.values() if plan[0][0].block.z == zc]
        points = {} if points_cache is None else points_cache
        needed = {p for steps in fine for p in self._partitions(steps)}
        points.update(self._reports.points_many(sorted(needed - points.keys())))
        cache = TileCache(self._grids, stored)
        cache.prefetch(key for layer, plan in plans.items() for key in self._keys(layer, plan))
        # Layers often hold the very same reports in a step (the 30-day and all-time layers of
        # a city whose reports are all recent): their smoothing is done once, by content.
        memo: dict[bytes, np.ndarray] = {}
        # Zoom by zoom, finest first: the privacy masks of a zoom read every layer's counts
        # there, so all of a zoom's counts are summed before any of its densities.
        by_zoom: dict[int, list[tuple[str, list[Step]]]] = {}
        for layer in sorted(plans, key=_decision_order):
            for level in plans[layer]:
                by_zoom.setdefault(level[0].block.z, []).append((layer, level))
        masks: dict[Step, dict[str, np.ndarray]] = {}
        for z in sorted(by_zoom, reverse=True):
            if z != zc:
                for layer, level in by_zoom[z]:
                    self._sum_counts(cache, layer, level)
            for layer, level in by_zoom[z]:
                for step in level:
                    if step not in masks:
                        masks[step] = self._masks(cache, points, step, now)
                    if z == zc:
                        self._compute_fine(cache, points, layer, step, now, memo, masks[step])
                    else:
                        self._compute_coarse(cache, layer, step, memo, masks[step])
        return cache.flush(computed_at)

    # --- planning ----------------------------------------------------------------------------
    def _fine_steps(self, partitions: Iterable[str]) -> list[Step]:
        """One step per compute-zoom tile: the bounding box of its partitions to recompute.

        A partition's step smooths a source 2 reaches wider on each side than the partition
        (64 cells, where the reach is ~34 cells in London): ten times its own area, most of it
        shared with its neighbours' steps. Partitions recomputed together in one tile share
        one source instead (bench/freshness.py: a city's 60 dirty partitions in 4-6 steps).
        Partitions inside the box that had no mark are recomputed too, to the same values.
        """
        pyr = self._pyramid
        size = pyr.partition_cells
        per_tile = TILE // size
        boxes: dict[tuple[int, int], list[int]] = {}
        for partition in partitions:
            _, px, py = parse_partition(partition)
            box = boxes.setdefault((px // per_tile, py // per_tile), [px, py, px, py])
            box[0], box[1] = min(box[0], px), min(box[1], py)
            box[2], box[3] = max(box[2], px), max(box[3], py)
        zc = pyr.compute_zoom
        return [
            self._step(Region(zc, y0 * size, x0 * size, (y1 + 1) * size, (x1 + 1) * size))
            for _, (x0, y0, x1, y1) in sorted(boxes.items())
        ]

    def _step(self, block: Region) -> Step:
        # The latitude of the block's tile, not of the block: which partitions were dirty
        # together must not change the values written (a block always lies in one tile).
        sigma = self._pyramid.sigma_cells(block.z, tile_center_lat(block.z, block.r0 // TILE))
        reach = self._pyramid.reach(sigma)
        return Step(block, block.grow(2 * reach), block.grow(reach), sigma, reach)

    def _plan(self, fine: list[Step]) -> list[list[Step]]:
        """Steps per zoom, finest first; coarser blocks are the parents of finer ones."""
        levels = [fine]
        blocks = {s.block for s in fine}
        while next(iter(blocks)).z > 0:
            blocks = {b.parent() for b in blocks}
            levels.append([self._step(b) for b in sorted(blocks, key=lambda r: (r.r0, r.c0))])
        return levels

    def _partitions(self, steps: list[Step]) -> set[str]:
        pyr = self._pyramid
        size = pyr.partition_cells
        nparts = 1 << pyr.partition_zoom
        out = set()
        for step in steps:
            src = step.source
            for qy in range(max(src.r0 // size, 0), min((src.r1 - 1) // size, nparts - 1) + 1):
                for qx in range(max(src.c0 // size, 0), min((src.c1 - 1) // size, nparts - 1) + 1):
                    out.add(partition_key(pyr.partition_zoom, qx, qy))
        return out

    def _keys(self, layer: str, plan: list[list[Step]]) -> set[str]:
        keys: set[str] = set()
        zc = self._pyramid.compute_zoom
        for i, level in enumerate(plan):
            for step in level:
                z = step.block.z
                keys.update(grid_key("d", layer, z, x, y) for x, y in step.valid.tiles(APRON))
                # The compute zoom writes its block's counts; coarser zooms read around theirs.
                counted = step.block if z == zc else step.source
                keys.update(grid_key("c", layer, z, x, y) for x, y in counted.tiles())
                if i == 0 and z < zc:
                    # The first level of a partial plan sums counts stored one zoom finer.
                    child = step.block.clip()
                    child = Region(z + 1, child.r0 * 2, child.c0 * 2, child.r1 * 2, child.c1 * 2)
                    keys.update(grid_key("c", layer, z + 1, x, y) for x, y in child.tiles())
        return keys

    # --- computing ---------------------------------------------------------------------------
    def _compute_fine(
        self,
        cache: TileCache,
        points: dict[str, list[StoredPoint]],
        layer: str,
        step: Step,
        now: datetime,
        memo: dict[bytes, np.ndarray],
        masks: dict[str, np.ndarray],
    ) -> None:
        """Compute zoom: linear binning of the reports themselves, for accuracy."""
        lon, lat, unit = self._layer_points(points, layer, step, now)
        u, v = self._cells(step, lon, lat)
        key = _digest("fine", step, u, v)
        if key not in memo:
            values = density.density(u, v, step.source.shape, step.sigma, 1.0)
            values /= row_areas_km2(step.source)[:, None]
            memo[key] = values
        r, b = step.reach, 2 * step.reach
        h, w = step.valid.shape
        shown = memo[key][r : r + h, r : r + w] * masks[layer]
        self._write(cache, "d", layer, step.valid, shown)
        counts = np.stack(
            [
                density.simple_bin(u, v, step.source.shape),
                density.simple_bin(u, v, step.source.shape, unit),
            ]
        )
        bh, bw = step.block.shape
        self._write(cache, "c", layer, step.block, counts[:, b : b + bh, b : b + bw])

    def _sum_counts(self, cache: TileCache, layer: str, level: list[Step]) -> None:
        """Coarser zooms: each count cell is the sum of its four children."""
        for step in level:
            region = step.block.clip()
            child = Region(region.z + 1, region.r0 * 2, region.c0 * 2, region.r1 * 2, region.c1 * 2)
            fine = self._read(cache, "c", layer, child)
            counts = fine.reshape(2, fine.shape[1] // 2, 2, fine.shape[2] // 2, 2).sum(axis=(2, 4))
            self._write(cache, "c", layer, region, counts)

    def _compute_coarse(
        self,
        cache: TileCache,
        layer: str,
        step: Step,
        memo: dict[bytes, np.ndarray],
        masks: dict[str, np.ndarray],
    ) -> None:
        """Coarser zooms: densities smoothed from the counts at this zoom's sigma."""
        counts = self._read(cache, "c", layer, step.source)[0]
        key = _digest("coarse", step, counts)
        if key not in memo:
            values = density.smooth(counts.astype(np.float64), step.sigma)
            values /= row_areas_km2(step.source)[:, None]
            memo[key] = values
        r = step.reach
        h, w = step.valid.shape
        shown = memo[key][r : r + h, r : r + w] * masks[layer]
        self._write(cache, "d", layer, step.valid, shown)

    def _masks(
        self,
        cache: TileCache,
        points: dict[str, list[StoredPoint]],
        step: Step,
        now: datetime,
    ) -> dict[str, np.ndarray]:
        """Which cells of the step's valid region each layer may show (``shared.geo.privacy``),
        from every category's and window's counts around it: the reports themselves at the
        compute zoom, the stored counts at coarser ones. Categories with no report in the
        step's source show nothing and are left out of the decision (most steps hold few)."""
        zc = self._pyramid.compute_zoom
        wins = list(WINDOWS)
        r = step.reach
        vh, vw = step.valid.shape
        crop = (r, r + vh, r, r + vw)
        interpolated = step.block.z == zc and zc < self._pyramid.max_zoom
        inner, outer = self._rule.radii(step.sigma, privacy.slack(interpolated))
        pending = 0
        group = 1
        if step.block.z == zc:
            # Decided on blocks of group x group cells, as one cell each: the rule then holds
            # for every point of a block (the slack is a block's), with the circle shrunk by
            # at most 1.4 cells more. Blocks stay under a quarter of sigma; in London (sigma
            # 8.5 cells) 2 x 2 cut a step's decision from 20 to 4 ms (bench/ingest.py).
            group = max(1, int(step.sigma // 4))
            cats, raw, units = self._bin_all(points, step, now, group)
            slack = privacy.slack(interpolated or group > 1)
            inner, outer = self._rule.radii(step.sigma / group, slack)
            crop = (r // group, -(-(r + vh) // group), r // group, -(-(r + vw) // group))
        else:
            totals = [layer_key(ALL, w) for w in wins]
            total = self._read(cache, "c", totals[-1], step.source)
            if not (privacy.disc_sum(total[1], inner, crop) >= self._rule.min_reports).any():
                return _hidden(step)
            tiles = step.source.tiles()
            z = step.block.z
            cache.prefetch(
                grid_key("c", layer, z, x, y)
                for layer in [layer_key(c, ALL) for c in _CATEGORIES] + totals
                for x, y in tiles
            )
            cats = [
                c
                for c in _CATEGORIES
                if self._read(cache, "c", layer_key(c, ALL), step.source).any()
            ]
            cache.prefetch(
                grid_key("c", layer_key(c, w), z, x, y)
                for c in cats
                for w in wins
                for x, y in tiles
            )
            shape = (len(cats), len(wins), *step.source.shape)
            raw = np.zeros(shape, dtype=np.int64)
            units = np.zeros(shape, dtype=np.int64)
            for i, c in enumerate(cats):
                for j, w in enumerate(wins):
                    if j and all(
                        cache.same(
                            grid_key("c", layer_key(c, w), z, x, y),
                            grid_key("c", layer_key(c, wins[j - 1]), z, x, y),
                        )
                        for x, y in tiles
                    ):
                        # The same bytes as the shorter window's (all its reports are recent):
                        # no decode. Most cities' windows are copies of each other.
                        raw[i, j], units[i, j] = raw[i, j - 1], units[i, j - 1]
                        continue
                    raw[i, j], units[i, j] = self._read(cache, "c", layer_key(c, w), step.source)
            # A category's counts here lag all's while its layers wait for the background pass:
            # the reports all has and the categories do not yet show sit in all's pool.
            stacks = np.stack([self._read(cache, "c", layer, step.source) for layer in totals], 1)
            extra = np.maximum(stacks - np.stack([raw.sum(axis=0), units.sum(axis=0)]), 0)
            if extra.any():
                raw = np.concatenate([raw, extra[0][None]])
                units = np.concatenate([units, extra[1][None]])
                pending = 1
        if not cats and not pending:
            return _hidden(step)
        per_cat, per_all = privacy.slice_masks(
            raw, units, self._rule, inner, outer, crop, unpublished=pending
        )
        if group > 1:
            # Back to cells: each block's decision for its cells, cut to the valid region.
            off = r % group
            per_cat = np.repeat(np.repeat(per_cat, group, axis=-2), group, axis=-1)
            per_cat = per_cat[..., off : off + vh, off : off + vw]
            per_all = np.repeat(np.repeat(per_all, group, axis=-2), group, axis=-1)
            per_all = per_all[..., off : off + vh, off : off + vw]
        out = _hidden(step)
        out.update({layer_key(ALL, w): per_all[j] for j, w in enumerate(wins)})
        for i, c in enumerate(cats):
            for j, w in enumerate(wins):
                out[layer_key(c, w)] = per_cat[i, j]
        return out

    def _bin_all(
        self,
        points: dict[str, list[StoredPoint]],
        step: Step,
        now: datetime,
        group: int = 1,
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The categories with reports in the step's source, and their counts and unit counts
        by window per block of group x group cells: (C, W, rows / group, cols / group)."""
        arrays = self._arrays(points, step, now)
        rows, cols = step.source.shape
        u, v = self._cells(step, arrays.lon, arrays.lat)
        with np.errstate(invalid="ignore"):
            inside = (u >= 0) & (u < cols) & (v >= 0) & (v < rows)
        present = np.unique(arrays.cat[inside])
        cats = [_CATEGORIES[i] for i in present]
        index = np.full(len(_CATEGORIES), -1, dtype=np.intp)
        index[present] = np.arange(present.size)
        spans = len(WINDOWS)
        shape = (len(cats), spans, -(-rows // group), -(-cols // group))
        raw = np.zeros(shape, dtype=np.int64)
        units = np.zeros(shape, dtype=np.int64)
        if cats:
            ci = index[arrays.cat[inside]]
            ri = arrays.ring[inside]
            ui = arrays.unit[inside]
            rr = v[inside].astype(np.intp) // group
            cc = u[inside].astype(np.intp) // group
            # Windows are nested: a report counts in its own window and every longer one (added
            # once per window it is in, cheaper than a running sum over mostly empty grids).
            for w in range(spans):
                held = ri <= w
                at = (ci[held], np.full(int(held.sum()), w), rr[held], cc[held])
                np.add.at(raw, at, 1)
                np.add.at(units, at, ui[held])
        return cats, raw, units

    def _cells(self, step: Step, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in cell units of the step's source."""
        n = TILE << step.block.z
        mx, my = lonlat_to_world(lon, lat)
        return mx * n - step.source.c0, my * n - step.source.r0

    def _layer_points(
        self,
        points: dict[str, list[StoredPoint]],
        layer: str,
        step: Step,
        now: datetime,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        category, window = layer.split("|")
        arrays = self._arrays(points, step, now)
        keep = arrays.ring <= list(WINDOWS).index(window)
        if category != ALL:
            keep &= arrays.cat == _CATEGORY_INDEX[category]
        return arrays.lon[keep], arrays.lat[keep], arrays.unit[keep]

    def _arrays(
        self, points: dict[str, list[StoredPoint]], step: Step, now: datetime
    ) -> StepPoints:
        """The reports of a step's partitions as arrays, made once per step and run: every
        layer of the step and its masks read them (one walk over the reports, not one a layer)."""
        known = self._step_points.get(step)
        if known is not None:
            return known
        spans = list(WINDOWS.values())
        chosen = [p for key in self._partitions([step]) for p in points.get(key, ())]
        arrays = StepPoints(
            np.fromiter((p.lon for p in chosen), np.float64, len(chosen)),
            np.fromiter((p.lat for p in chosen), np.float64, len(chosen)),
            np.fromiter((_CATEGORY_INDEX[p.category] for p in chosen), np.intp, len(chosen)),
            np.fromiter((_ring(p.occurred_at, now, spans) for p in chosen), np.intp, len(chosen)),
            np.fromiter((p.unit for p in chosen), np.int64, len(chosen)),
        )
        self._step_points[step] = arrays
        return arrays

    # --- tile access -------------------------------------------------------------------------
    def _read(self, cache: TileCache, kind: str, layer: str, region: Region) -> np.ndarray:
        """Counts and unit counts over a region, (2, rows, cols) (zero outside the world and
        where no tile exists). A count tile is 2-D where every report is a unit (the usual
        case: half the memory to decode and copy) and (2, 256, 256) otherwise."""
        out = np.zeros((2, *region.shape), dtype=np.int64)
        for x, y in region.tiles():
            tile = cache.peek(grid_key(kind, layer, region.z, x, y))
            if tile is None:
                continue
            if tile.ndim == 2:
                self._copy(tile, x * TILE, y * TILE, out[0], region, into_tile=False)
                self._copy(tile, x * TILE, y * TILE, out[1], region, into_tile=False)
            else:
                self._copy(tile, x * TILE, y * TILE, out, region, into_tile=False)
        return out

    def _write(
        self, cache: TileCache, kind: str, layer: str, region: Region, values: np.ndarray
    ) -> None:
        apron = APRON if kind == "d" else 0
        # Zeros into a tile that does not exist leave it not existing: nothing to make (most
        # layers of a step show nothing somewhere, and a zero tile is 0.5 MB to fill).
        empty = not values.any()
        units_differ = kind == "c" and not np.array_equal(values[0], values[1])
        for x, y in region.tiles(apron):
            key = grid_key(kind, layer, region.z, x, y)
            if empty and cache.peek(key) is None:
                continue
            if kind == "d":
                tile = cache.get(key, (STORED, STORED), np.float64)
                data = values
            else:
                tile = cache.get(key, (2, TILE, TILE) if units_differ else (TILE, TILE), np.int64)
                if tile.ndim == 2 and units_differ:
                    tile = np.stack([tile, tile])
                    cache.replace(key, tile)
                data = values if tile.ndim == 3 else values[0]
            self._copy(tile, x * TILE - apron, y * TILE - apron, data, region, into_tile=True)
            cache.mark(key)

    @staticmethod
    def _copy(
        tile: np.ndarray,
        tile_c0: int,
        tile_r0: int,
        grid: np.ndarray,
        region: Region,
        *,
        into_tile: bool,
    ) -> None:
        th, tw = tile.shape[-2:]
        r0, r1 = max(region.r0, tile_r0), min(region.r1, tile_r0 + th)
        c0, c1 = max(region.c0, tile_c0), min(region.c1, tile_c0 + tw)
        if r0 >= r1 or c0 >= c1:
            return
        t = (..., slice(r0 - tile_r0, r1 - tile_r0), slice(c0 - tile_c0, c1 - tile_c0))
        g = (..., slice(r0 - region.r0, r1 - region.r0), slice(c0 - region.c0, c1 - region.c0))
        if into_tile:
            tile[t] = grid[g]
        else:
            grid[g] = tile[t]


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


def expand_layers(by_layer: dict[str, set[str]]) -> dict[str, set[str]]:
    """The layers whose privacy masks follow from the ones asked for (``shared.geo.privacy``), at
    the same partitions: for a category's layer, its longer windows (each window is decided
    after the shorter ones of its category) and every window of all (decided against every
    category). A run of all's layers alone is the fast pass: the windows it leaves (and the
    categories) wait for the background pass, which recomputes all's against them; until
    then the map differs from one recomputed at once no more than it did before the rule
    (new reports are in all, not yet in the other layers)."""
    out = {layer: set(parts) for layer, parts in by_layer.items()}
    wins = list(WINDOWS)
    for layer, parts in by_layer.items():
        category, window = layer.split("|")
        if category == ALL:
            continue
        for later in wins[wins.index(window) :]:
            out.setdefault(layer_key(category, later), set()).update(parts)
        for any_window in wins:
            out.setdefault(layer_key(ALL, any_window), set()).update(parts)
    return out


def _decision_order(layer: str) -> tuple[int, str, int]:
    """Categories before all, each by window from the shortest (``shared.geo.privacy``)."""
    category, window = layer.split("|")
    return (category == ALL, category, list(WINDOWS).index(window))


def _ring(occurred_at: datetime, now: datetime, spans: list[timedelta | None]) -> int:
    """Index of the shortest window that holds a report."""
    for i, span in enumerate(spans):
        if span is None or occurred_at >= now - span:
            return i
    return len(spans) - 1


def _hidden(step: Step) -> dict[str, np.ndarray]:
    """Every layer hidden over the step's valid region (one shared array, never written)."""
    hidden = np.zeros(step.valid.shape, dtype=bool)
    return dict.fromkeys(all_layers(), hidden)
