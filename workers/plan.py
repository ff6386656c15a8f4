"""A recompute's plan: the smoothing steps per zoom around the dirty partitions, the partitions
they read and the tiles they touch (geometry only, no I/O).

At the compute zoom the dirty partitions of one tile make one step (their bounding box); each
coarser zoom's blocks are the parents of the finer ones, so one report touches one block per
zoom, plus neighbours when its reach crosses a tile edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.geo.tiles import APRON, TILE, Pyramid, lonlat_to_world, tile_center_lat
from shared.store.keys import grid_key, parse_partition, partition_key


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

    def children(self) -> Region:
        """The same cells one zoom finer (of the clipped region)."""
        r = self.clip()
        return Region(r.z + 1, r.r0 * 2, r.c0 * 2, r.r1 * 2, r.c1 * 2)

    def tiles(self, apron: int = 0) -> list[tuple[int, int]]:
        """Tiles (x, y) whose stored extent (with apron) intersects the region."""
        n = 1 << self.z
        ys = range(max((self.r0 - apron) // TILE, 0), min((self.r1 - 1 + apron) // TILE, n - 1) + 1)
        xs = range(max((self.c0 - apron) // TILE, 0), min((self.c1 - 1 + apron) // TILE, n - 1) + 1)
        return [(x, y) for y in ys for x in xs]


@dataclass(frozen=True)
class Step:
    """One smoothing step: density over `valid`, from counts or points over `source`."""

    block: Region
    source: Region
    valid: Region
    sigma: float
    reach: int


def cells(step: Step, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in cell units of the step's source."""
    n = TILE << step.block.z
    mx, my = lonlat_to_world(lon, lat)
    return mx * n - step.source.c0, my * n - step.source.r0


class Planner:
    def __init__(self, pyramid: Pyramid) -> None:
        self._pyramid = pyramid

    def fine_steps(self, partitions: Iterable[str]) -> list[Step]:
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
            self.step(Region(zc, y0 * size, x0 * size, (y1 + 1) * size, (x1 + 1) * size))
            for _, (x0, y0, x1, y1) in sorted(boxes.items())
        ]

    def step(self, block: Region) -> Step:
        # The latitude of the block's tile, not of the block: which partitions were dirty
        # together must not change the values written (a block always lies in one tile).
        sigma = self._pyramid.sigma_cells(block.z, tile_center_lat(block.z, block.r0 // TILE))
        reach = self._pyramid.reach(sigma)
        return Step(block, block.grow(2 * reach), block.grow(reach), sigma, reach)

    def plan(self, fine: list[Step]) -> list[list[Step]]:
        """Steps per zoom, finest first; coarser blocks are the parents of finer ones."""
        levels = [fine]
        blocks = {s.block for s in fine}
        while next(iter(blocks)).z > 0:
            blocks = {b.parent() for b in blocks}
            levels.append([self.step(b) for b in sorted(blocks, key=lambda r: (r.r0, r.c0))])
        return levels

    def partitions(self, steps: list[Step]) -> set[str]:
        """The partitions whose reports the steps' sources cover."""
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

    def keys(self, layer: str, plan: list[list[Step]]) -> set[str]:
        """The tiles a layer's plan reads or writes, to fetch in one batch."""
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
                    child = step.block.children()
                    keys.update(grid_key("c", layer, z + 1, x, y) for x, y in child.tiles())
        return keys
