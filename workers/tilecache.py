"""The tiles of a recompute: read once per chunk, changed in memory, only changed ones written;
and regions of cells read from and written into them.

All tiles a chunk touches are read in one batch and written in batches, which is what
coalescing a burst of reports buys.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from shared.geo import gridcodec
from shared.geo.tiles import APRON, STORED, TILE
from shared.store.grids import GridRepository
from shared.store.keys import grid_key
from workers.plan import Region


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

    def assume_missing(self, keys: Iterable[str]) -> None:
        """Count tiles known to hold nothing, not read: a time atom's where its layer has no
        count tile (an atom counts some of its layer's reports), which are most of a step's
        atoms at coarse zooms (bench/ingest.py: read units). Absent and all-zero count tiles
        read and write alike."""
        for key in keys:
            if key not in self._tiles and key not in self._undecoded:
                known, blob = self._stored.get(key) if self._stored is not None else (False, None)
                self._keep(key, blob if known else None)

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


def read_region(cache: TileCache, kind: str, layer: str, region: Region) -> np.ndarray:
    """Counts and unit counts over a region, (2, rows, cols) (zero outside the world and
    where no tile exists). A count tile is 2-D where every report is a unit (the usual
    case: half the memory to decode and copy) and (2, 256, 256) otherwise."""
    out = np.zeros((2, *region.shape), dtype=np.int64)
    for x, y in region.tiles():
        tile = cache.peek(grid_key(kind, layer, region.z, x, y))
        if tile is None:
            continue
        if tile.ndim == 2:
            _copy(tile, x * TILE, y * TILE, out[0], region, into_tile=False)
            _copy(tile, x * TILE, y * TILE, out[1], region, into_tile=False)
        else:
            _copy(tile, x * TILE, y * TILE, out, region, into_tile=False)
    return out


def write_region(
    cache: TileCache, kind: str, layer: str, region: Region, values: np.ndarray
) -> None:
    """Values over a region into the tiles it covers (density tiles with their apron)."""
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
        _copy(tile, x * TILE - apron, y * TILE - apron, data, region, into_tile=True)
        cache.mark(key)


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
