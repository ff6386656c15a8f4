"""Stored tile size and codec time: format version 1 (the baseline, re-implemented here) vs 2.

    .venv/bin/python bench/codec.py

Tiles are built the way the pyramid builds them, from seeded clustered points: a 256x256 count
tile and a 260x260 density tile (counts smoothed by a Gaussian; sigma 4 cells at the compute
zoom, 1-1.5 at coarse zooms, where many reports share a tile). Sizes decide the DynamoDB write
units (1 WRU per started KB); times are the best CPU time of many runs, so other jobs on the
shared box stay out of them.
"""

from __future__ import annotations

import math
import struct
import sys
import time
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/codec.py` from a checkout
    sys.path.insert(0, str(ROOT))

from shared.geo import gridcodec  # noqa: E402

HEADER = struct.Struct("<2sBBHHd")  # magic, version, kind, height, width, scale: both versions
REPEATS = 200

# name: (reports, clusters, cluster spread in cells, sigma in cells)
SCENARIOS = {
    "rural (5 reports)": (5, 3, 10.0, 4.0),
    "town (60)": (60, 3, 15.0, 4.0),
    "city (300)": (300, 6, 25.0, 4.0),
    "dense city (1000)": (1000, 8, 40.0, 4.0),
    "coarse zoom (5k, s=1.5)": (5000, 30, 20.0, 1.5),
    "coarse zoom (20k, s=1)": (20000, 40, 15.0, 1.0),
}


def tiles(
    rng: np.random.Generator, n: int, clusters: int, spread: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.uniform(30, 230, size=(clusters, 2))
    points = centres[rng.integers(0, clusters, n)] + rng.normal(0, spread, size=(n, 2))
    grid, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=260, range=[[0, 260]] * 2)
    return grid[2:-2, 2:-2].astype(np.int64), ndimage.gaussian_filter(grid, sigma) / 1e4


def v1_density(grid: np.ndarray) -> bytes:
    assert np.all(np.isfinite(grid))  # as v1 checked, so the times compare like with like
    values = np.maximum(grid, 0.0)
    peak = float(values.max(initial=0.0))
    scale = peak / 65535.0 if peak > 0 else 1.0
    payload = np.rint(values / scale).astype("<u2").tobytes()
    return HEADER.pack(b"SH", 1, 1, *grid.shape, scale) + zlib.compress(payload, 1)


def v1_counts(grid: np.ndarray) -> bytes:
    payload = grid.astype("<u4").tobytes()
    return HEADER.pack(b"SH", 1, 2, *grid.shape, 1.0) + zlib.compress(payload, 1)


def v1_decode(blob: bytes) -> np.ndarray:
    _, _, kind, height, width, scale = HEADER.unpack_from(blob)
    raw = zlib.decompress(blob[HEADER.size :])
    if kind == 1:
        return np.frombuffer(raw, "<u2").reshape(height, width).astype(np.float64) * scale
    return np.frombuffer(raw, "<u4").reshape(height, width).astype(np.int64)


def best_ms(old: Callable[[], object], new: Callable[[], object]) -> tuple[float, float]:
    """Best CPU ms of each; the two alternate, so both see the same load on the shared box."""
    best = [math.inf, math.inf]
    for _ in range(REPEATS):
        for i, fn in enumerate((old, new)):
            start = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - start)
    return best[0] * 1e3, best[1] * 1e3


def main() -> None:
    rng = np.random.default_rng(20261127)
    # The first ~0.5 s of work measured up to 2x slow (warm-up): spend them off the table.
    _, warm = tiles(np.random.default_rng(0), 300, 6, 25.0, 4.0)
    best_ms(partial(v1_density, warm), partial(gridcodec.encode_density, warm))
    print("| tile | bytes v1 -> v2 | ratio | WRU v1 -> v2 | encode ms | decode ms |")
    print("|---|---:|---:|---:|---:|---:|")
    wru = [0, 0]
    for name, params in SCENARIOS.items():
        counts, density = tiles(rng, *params)
        for kind, grid, old, new in (
            ("density", density, v1_density, gridcodec.encode_density),
            ("counts", counts, v1_counts, gridcodec.encode_counts),
        ):
            blob1, blob2 = old(grid), new(grid)
            b1, b2 = len(blob1), len(blob2)
            e1, e2 = best_ms(partial(old, grid), partial(new, grid))
            d1, d2 = best_ms(partial(v1_decode, blob1), partial(gridcodec.decode, blob2))
            w1, w2 = math.ceil(b1 / 1024), math.ceil(b2 / 1024)
            wru[0], wru[1] = wru[0] + w1, wru[1] + w2
            print(
                f"| {name}, {kind} | {b1:,} -> {b2:,} | {b1 / b2:.2f}x | {w1} -> {w2} "
                f"| {e1:.2f} -> {e2:.2f} | {d1:.2f} -> {d2:.2f} |"
            )
    print(f"\nWrite units for all tiles above: v1 {wru[0]}, v2 {wru[1]}")


if __name__ == "__main__":
    main()
