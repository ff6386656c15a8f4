"""The names the two tables' items go by, shared by the repositories and by what reads items
without them (the web's beacon, the status reader, the run log).

A partition is a fine base tile (``z/x/y``): the reports table's ``p#`` items and the dirty
marks are keyed by it, so a recompute reads only the reports near what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

GRID_SK = "g"
"""The sort key of every tile item (density ``d#``, count ``c#``)."""
TILES_WRITTEN = "tiles-written"
"""The meta item rewritten after every write of tiles: the web's caches look at it to learn
that tiles changed (``web.grids.BlobCache``), one small read instead of re-reading tiles."""
META_PK = "meta"
"""The partition of the grids table's small named items (flags, the `tiles-written` beacon)."""

OVERVIEW = "overview"
"""A background mark's kind: the layer's overview zooms wait."""
FINE = "fine"
"""A background mark's kind: a category layer's finer zooms wait."""


def partition_key(z: int, x: int, y: int) -> str:
    return f"{z}/{x}/{y}"


def parse_partition(key: str) -> tuple[int, int, int]:
    z, x, y = (int(part) for part in key.split("/"))
    return z, x, y


def grid_key(kind: str, layer: str, z: int, x: int, y: int) -> str:
    return f"{kind}#{layer}#{z}/{x}/{y}"


def utc_now_iso() -> str:
    """A tile's `computed_at` (and the run log's times): UTC to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
