"""Grids as bytes small enough for one DynamoDB item (400 KB).

Densities are quantized to uint16 relative to the grid's maximum (relative error <= 1/131070 of
the peak, far below the kernel's own error) and zlib-compressed; count grids are integers and
compress losslessly. A 260x260 density tile is 135 KB before compression at worst, and smooth
or sparse grids compress to a few KB, so an item never nears the limit.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_MAGIC = b"SH"
_VERSION = 1
_HEADER = struct.Struct("<2sBBHHd")
_DENSITY = 1
_COUNTS = 2
ITEM_LIMIT = 400 * 1024


class CodecError(ValueError):
    """Stored bytes that are not a grid of ours: never guess, fail loudly."""


def encode_density(grid: np.ndarray) -> bytes:
    values = np.asarray(grid, dtype=np.float64)
    if values.ndim != 2 or not np.all(np.isfinite(values)):
        raise CodecError("density grids are finite 2-D arrays")
    values = np.maximum(values, 0.0)
    peak = float(values.max(initial=0.0))
    scale = peak / 65535.0 if peak > 0 else 1.0
    quantized = np.rint(values / scale).astype("<u2")
    return _pack(_DENSITY, values.shape, scale, quantized.tobytes())


def encode_counts(grid: np.ndarray) -> bytes:
    values = np.asarray(grid)
    if values.ndim != 2 or values.min(initial=0) < 0:
        raise CodecError("count grids are non-negative 2-D arrays")
    return _pack(_COUNTS, values.shape, 1.0, values.astype("<u4").tobytes())


def decode(blob: bytes) -> np.ndarray:
    """Density grids come back as float64, count grids as int64."""
    if len(blob) < _HEADER.size:
        raise CodecError("truncated grid")
    magic, version, kind, height, width, scale = _HEADER.unpack_from(blob)
    if magic != _MAGIC or version != _VERSION:
        raise CodecError("not a grid")
    raw = zlib.decompress(blob[_HEADER.size :])
    if kind == _DENSITY:
        return np.frombuffer(raw, dtype="<u2").reshape(height, width).astype(np.float64) * scale
    if kind == _COUNTS:
        return np.frombuffer(raw, dtype="<u4").reshape(height, width).astype(np.int64)
    raise CodecError(f"unknown grid kind {kind}")


def _pack(kind: int, shape: tuple[int, ...], scale: float, payload: bytes) -> bytes:
    height, width = shape
    blob = _HEADER.pack(_MAGIC, _VERSION, kind, height, width, scale) + zlib.compress(payload, 1)
    if len(blob) > ITEM_LIMIT:  # pragma: no cover - bounded by the tile size, see docstring
        raise CodecError("grid too large for one item")
    return blob
