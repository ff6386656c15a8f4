"""Read stored density tiles through an in-process cache; never compute from reports.

Zooms up to the compute zoom are stored; finer zooms are interpolated (cubic) from the stored
compute-zoom tile, which carries a 2-cell apron so interpolation is seamless across tile edges.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from scipy import ndimage

from shared.geo import gridcodec
from shared.geo.tiles import APRON, TILE, Pyramid, stored_layers
from shared.store.grids import GridRepository, stamp_time
from shared.store.keys import grid_key

_MISSING = (b"", "")


@dataclass(frozen=True)
class Tile:
    values: np.ndarray | None
    computed_at: str | None


SETTLE_S = 1.0
"""Copies fetched this soon after the beacon changed are fetched once more when it has passed:
DynamoDB's eventually consistent reads converge within about a second (the emulator's at once)."""

STALE_GRACE_S = 5.0
"""How long past its TTL an entry may still be served while another thread refreshes it."""

STALE_ANSWER_S = 0.1
"""How long an answer built from such an entry is kept. A refresh waits for the event loop, and
under saturating reads it took 1-2.6 s (bench/load_reads.py's heatmap 304 step): with answers
from stale copies not kept, a third of the requests built their answer again (~0.4 ms each).
The staleness bound is the tile cache's: the copy itself is served stale that long."""


class BlobCache:
    """A small LRU with a TTL: grids change only when a worker recomputes them.

    With a ``beacon`` (the item the worker rewrites after every write of tiles,
    ``shared.store.keys.TILES_WRITTEN``), a request looks at it at most every ``check_every``
    seconds, and when it has changed every entry counts as expired: a new tile shows within
    ``check_every`` plus one fetch instead of up to the TTL, and while nothing is written the
    entries last the whole TTL. Looked at only when requests come, so an idle service reads
    nothing; a failed look changes nothing (the TTL still bounds the staleness).

    An expired entry is refreshed by one thread while the others go on serving the copy they
    have (stale-while-revalidate). Without that, every request thread that met the expiry
    fetched the same tiles at once: under load, 16 threads stalled on the store every TTL,
    which set the p99 of a cached read (bench/load_reads.py: 42 ms against 14 ms for the
    baseline). Staleness stays bounded: the TTL plus one fetch, and never more than
    STALE_GRACE_S beyond the TTL (then every thread fetches, as before)."""

    def __init__(
        self,
        grids: GridRepository,
        ttl: float,
        size: int,
        clock: Callable[[], float] = time.monotonic,
        beacon: Callable[[], str | None] | None = None,
        check_every: float = 0.1,
    ) -> None:
        self._grids = grids
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, tuple[bytes, str]]] = OrderedDict()
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()
        self._beacon = beacon
        self._check_every = check_every
        self._checked_at = -math.inf
        self._checking = False
        self._seen: str | None = None
        self._looked = False
        self._changed_at = -math.inf

    def current(self, fetched: float) -> bool:
        """Whether a copy fetched at that time may still be served, as far as the beacon goes:
        not if the beacon changed after it, nor if it was fetched less than ``SETTLE_S`` after
        the change and that much has passed (an eventually consistent read just after a
        write may return the tile as it was: such copies are fetched once more)."""
        self._look()
        return self._current(fetched, self._clock())

    def _current(self, fetched: float, now: float) -> bool:
        changed = self._changed_at
        return fetched >= changed and not (fetched < changed + SETTLE_S <= now)

    def _look(self) -> None:
        if self._beacon is None:
            return
        now = self._clock()
        if now - self._checked_at < self._check_every:
            return  # the common case, read without the lock (rechecked under it)
        with self._lock:
            if self._checking or now - self._checked_at < self._check_every:
                return
            self._checking = True
        value = self._seen
        try:
            value = self._beacon()
        except (BotoCoreError, ClientError):
            pass  # the store is out of reach: serve what is cached, as the TTL allows
        finally:
            with self._lock:
                self._checking = False
                self._checked_at = now
                if value != self._seen:
                    if self._looked:  # the first look only learns where things stand
                        self._changed_at = now
                    self._seen = value
                self._looked = True

    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return self.get_aged(keys)[0]

    def get_aged(self, keys: list[str]) -> tuple[dict[str, tuple[bytes, str]], float]:
        """The blobs, and how long ago the oldest copy among them was fetched (0: all now):
        what is built from them may be cached only for what is left of the TTL."""
        self._look()
        now = self._clock()
        out: dict[str, tuple[bytes, str]] = {}
        missing = []
        oldest = 0.0
        with self._lock:
            for key in keys:
                hit = self._items.get(key)
                if hit is not None:
                    age = now - hit[0]
                    fresh = age < self._ttl and self._current(hit[0], now)
                    if fresh or (key in self._refreshing and age < self._ttl + STALE_GRACE_S):
                        self._items.move_to_end(key)
                        out[key] = hit[1]
                        oldest = max(oldest, age)
                        continue
                missing.append(key)
            self._refreshing.update(missing)
        if missing:
            try:
                found = self._grids.get_many(missing)
            except BaseException:
                with self._lock:
                    self._refreshing.difference_update(missing)
                raise
            with self._lock:  # new values and the end of the refresh, seen together
                self._refreshing.difference_update(missing)
                for key in missing:
                    value = found.get(key, _MISSING)
                    out[key] = value
                    self._items[key] = (now, value)
                    self._items.move_to_end(key)
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return {k: v for k, v in out.items() if v is not _MISSING and v[0]}, oldest


@dataclass(frozen=True)
class Answer:
    etag: str
    body: bytes | None
    content_type: str


class RecentAnswers:
    """The last answer to each exact request (path and query), kept for what is left of the
    grid cache's TTL.

    A repeated read within the TTL is then a lookup, with no parsing, no version lookups and no
    hashing. An answer is kept only until its oldest cached tile expires, so the two caches
    together stale no more than the blob cache alone (`GRID_CACHE_TTL`): an answer's ETag
    still changes within that time of its tiles changing. (Kept for a whole TTL from when it
    was made, an answer built from a copy near its own expiry was served up to twice that.)
    One built from a copy past its TTL, served while being refreshed, is kept STALE_ANSWER_S.

    Bounded by count and by the bytes of the bodies it holds, and an expired answer at the
    front is dropped as soon as another comes: a heatmap/get answer may be a megabyte, and
    viewers panning a map make a new request every time, so kept until 4,096 had come after
    them, stale answers could have filled a 0.5 GB web task.
    """

    def __init__(
        self,
        ttl: float,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        current: Callable[[float], bool] = lambda fetched: True,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._current = current
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: dict[str, tuple[float, float, Answer]] = {}
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> Answer | None:
        if self._ttl <= 0:
            return None
        found = self._items.get(key)
        if found is None or found[0] < self._clock() or not self._current(found[1]):
            return None
        return found[2]

    def put(self, key: str, answer: Answer, age: float = 0.0) -> None:
        """Keep the answer; `age`: how long ago the oldest data behind it was fetched."""
        if self._ttl <= 0:
            return
        now = self._clock()
        fetched = now - age
        expires = fetched + self._ttl
        if age >= self._ttl:
            # Built from a copy served while one thread refreshes it (BlobCache): kept for
            # STALE_ANSWER_S, or every request until the refresh lands builds it again.
            expires = now + STALE_ANSWER_S
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2].body or b"")
            self._items[key] = (expires, fetched, answer)
            self._bytes += len(answer.body or b"")
            items = self._items
            while len(items) > 1:
                oldest = next(iter(items))  # the first kept, as good as the first to expire
                expires, _, kept = items[oldest]
                if expires >= now and len(items) <= self._size and self._bytes <= self._max_bytes:
                    break
                del items[oldest]
                self._bytes -= len(kept.body or b"")


class BodyCache:
    """Finished answers by ETag (which names the request and the versions of its tiles).

    A warm read is a dictionary lookup, like serving static bytes; bounded by total bytes.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            body = self._items.get(etag)
            if body is not None:
                self._items.move_to_end(etag)
            return body

    def put(self, etag: str, body: bytes) -> None:
        if len(body) > self._max_bytes // 4:
            return
        with self._lock:
            if etag in self._items:
                return
            self._items[etag] = body
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)


class GridReader:
    def __init__(self, cache: BlobCache, pyramid: Pyramid) -> None:
        self._cache = cache
        self._pyramid = pyramid

    def current(self, fetched: float) -> bool:
        return self._cache.current(fetched)

    def versions(
        self, layer: str, z: int, coords: list[tuple[int, int]]
    ) -> tuple[tuple[str, ...], float]:
        """The stored tiles an answer is made from, with their computed_at: its version; and
        the age of the oldest cached copy among them (``BlobCache.get_aged``).

        Cheap (cached blob lookups, nothing decoded), so a 304 and a warm 200 cost no render.
        """
        zc = min(z, self._pyramid.compute_zoom)
        dz = z - zc
        parts = stored_layers(layer)
        keys = sorted({grid_key("d", p, zc, x >> dz, y >> dz) for p in parts for x, y in coords})
        blobs, age = self._cache.get_aged(keys)
        return tuple(f"{k}@{blobs[k][1]}" for k in keys if k in blobs), age

    @staticmethod
    def region_tiles(r0: int, c0: int, r1: int, c1: int) -> list[tuple[int, int]]:
        return [
            (x, y)
            for y in range(r0 // TILE, (r1 - 1) // TILE + 1)
            for x in range(c0 // TILE, (c1 - 1) // TILE + 1)
        ]

    def tiles(
        self, layer: str, z: int, coords: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Tile]:
        """A filter on light or days alone sums the time atoms it spans (``TIME_ATOMS``), each
        masked on its own: the sum shows nothing that the stored atoms do not."""
        parts = stored_layers(layer)
        if len(parts) == 1:
            return self._stored_tiles(parts[0], z, coords)
        each = [self._stored_tiles(part, z, coords) for part in parts]
        out = {}
        for xy in coords:
            values = [v for t in each if (v := t[xy].values) is not None]
            stamps = [s for t in each if (s := t[xy].computed_at)]
            total = np.sum(values, axis=0) if values else None
            out[xy] = Tile(total, max(stamps) if stamps else None)
        return out

    def _stored_tiles(
        self, layer: str, z: int, coords: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Tile]:
        zc = min(z, self._pyramid.compute_zoom)
        dz = z - zc
        sources = {(x >> dz, y >> dz) for x, y in coords}
        keys = {src: grid_key("d", layer, zc, *src) for src in sources}
        blobs = self._cache.get_many(list(keys.values()))
        decoded: dict[tuple[int, int], tuple[np.ndarray, str]] = {}
        for src, key in keys.items():
            if key in blobs:
                blob, computed_at = blobs[key]
                decoded[src] = (gridcodec.decode(blob), computed_at)
        out = {}
        for x, y in coords:
            hit = decoded.get((x >> dz, y >> dz))
            if hit is None:
                out[(x, y)] = Tile(None, None)
                continue
            grid, stamp = hit
            computed_at = stamp_time(stamp)
            if dz == 0:
                values = grid[APRON:-APRON, APRON:-APRON]
            else:
                values = upsample(grid, dz, x - ((x >> dz) << dz), y - ((y >> dz) << dz))
            out[(x, y)] = Tile(values if values.any() else None, computed_at)
        return out

    def region(
        self, layer: str, z: int, r0: int, c0: int, r1: int, c1: int
    ) -> tuple[np.ndarray, str | None]:
        """Values over global cells [r0, r1) x [c0, c1) at zoom z, and the newest computed_at."""
        out = np.zeros((r1 - r0, c1 - c0), dtype=np.float64)
        coords = self.region_tiles(r0, c0, r1, c1)
        newest: str | None = None
        for (x, y), tile in self.tiles(layer, z, coords).items():
            if tile.computed_at and (newest is None or tile.computed_at > newest):
                newest = tile.computed_at
            if tile.values is None:
                continue
            tr0, tc0 = y * TILE, x * TILE
            rr0, rr1 = max(r0, tr0), min(r1, tr0 + TILE)
            cc0, cc1 = max(c0, tc0), min(c1, tc0 + TILE)
            out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = tile.values[
                rr0 - tr0 : rr1 - tr0, cc0 - tc0 : cc1 - tc0
            ]
        return out, newest


def upsample(grid: np.ndarray, dz: int, sub_x: int, sub_y: int) -> np.ndarray:
    """The TILE x TILE cells of a tile dz zooms below a stored tile (with apron).

    Cubic interpolation of a density smooth at >= 2.5 cells per sigma; cells whose nearest
    stored cell was zeroed for privacy stay zero, so interpolation cannot reveal them.
    """
    factor = 1 << dz
    span = TILE / factor
    centres = (np.arange(TILE) + 0.5) / factor
    rows = sub_y * span + centres - 0.5 + APRON
    cols = sub_x * span + centres - 0.5 + APRON
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    values = ndimage.map_coordinates(grid, [rr, cc], order=3, mode="nearest")
    nearest = grid[
        np.clip(np.rint(rr).astype(int), 0, grid.shape[0] - 1),
        np.clip(np.rint(cc).astype(int), 0, grid.shape[1] - 1),
    ]
    values[nearest <= 0] = 0.0
    return np.maximum(values, 0.0)
