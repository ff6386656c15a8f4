"""Grids as few bytes as possible: every started KB written to DynamoDB is a write unit.

Format version 2 is written; version 1 blobs, already stored, still decode. Both share one
header (magic, version, kind, height, width, scale).

Density grids are quantized to 4095 levels of the tile's peak, so a value is off by at most
1/8190 of the peak (plus float rounding). That is ample: the binned kernel itself is only
held to 1 % of the peak against the exact density (shared/geo/density.py), the tests compare at
that 1 %, and a heat map shows far fewer shades. Twelve bits rather than sixteen also leave
zlib four fewer bits of noise a cell to store.

Each quantized cell is then replaced by its difference from the plane through its left, upper
and upper-left neighbours (a delta down the columns, then along the rows). Smoothed densities
are nearly planar locally, so the residuals are small. They are zigzagged (0, -1, 1, -2 ->
0, 1, 2, 3) so small negatives get a zero high byte too, byte-shuffled (all low bytes, then
all high bytes) so the high bytes form long runs, and compressed by zlib level 1, the fastest.
Measured on realistic tiles (``bench/codec.py``): 1.5-2.9x smaller than version 1, and about
2x faster to encode dense tiles as zlib has less to chew; decoding costs the same on dense
tiles and ~0.1-0.2 ms more on sparse ones (the cumulative sums). A delta along rows only came
out 30-60 % larger on town and city tiles and no faster; skipping the zigzag, 15-30 % larger.
The filter's arithmetic is modulo 2**16, so decoding restores the quantized values exactly,
whatever wraps in between.

Count grids stay exact. Most are sparse and a delta turns each lone count into two nonzero
cells, so they are not filtered: they are stored in the narrowest of 1, 2 or 4 bytes a cell
that holds their maximum (the all-zero high bytes of a 256x256 uint32 grid alone cost zlib
~1 KB and most of its time) and byte-shuffled. The decoder infers the width from the payload
length.

At worst (white noise) a 260x260 density payload is 135 KB before zlib and a 256x256 count
grid 256 KB, so an item never nears the 400 KB limit.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import numpy.typing as npt

_MAGIC = b"SH"
_VERSION = 2
_HEADER = struct.Struct("<2sBBHHd")
_DENSITY = 1
_COUNTS = 2
_COUNTS_UNITS = 3
LEVELS = 4095
ITEM_LIMIT = 400 * 1024

U16 = npt.NDArray[np.uint16]


class CodecError(ValueError):
    """Stored bytes that are not a grid of ours: never guess, fail loudly."""


def encode_density(grid: np.ndarray) -> bytes:
    values = np.asarray(grid, dtype=np.float64)
    if values.ndim != 2 or not np.all(np.isfinite(values)):
        raise CodecError("density grids are finite 2-D arrays")
    quantized, scale = _quantize(np.maximum(values, 0.0))
    return _pack(_DENSITY, values.shape, scale, _shuffle(_zigzag(_plane_residual(quantized))))


def encode_counts(grid: np.ndarray) -> bytes:
    """A 2-D grid of report counts, or a ``(2, H, W)`` stack of counts and unit counts
    (``shared.geo.privacy``). Where every report is a unit (no pseudonym was seen twice, or the
    setting is off) the stack is stored as its counts alone, in the very bytes of a 2-D grid;
    otherwise the counts are followed by the excess of counts over units (mostly zero)."""
    values = np.asarray(grid)
    if values.ndim == 3 and values.shape[0] == 2:
        counts, units = values[0], values[1]
        if np.array_equal(counts, units):
            values = counts
        else:
            excess = counts - units
            if excess.min(initial=0) < 0 or units.min(initial=0) < 0:
                raise CodecError("unit counts are within 0..counts")
            planes = np.concatenate([counts, excess])
            return _pack(_COUNTS_UNITS, counts.shape, 1.0, _shuffle(_narrow(planes)))
    if values.ndim != 2 or values.min(initial=0) < 0:
        raise CodecError("count grids are non-negative 2-D arrays")
    return _pack(_COUNTS, values.shape, 1.0, _shuffle(_narrow(values)))


def _narrow(values: np.ndarray) -> np.ndarray:
    top = values.max(initial=0)
    if top > 0xFFFFFFFF:
        raise CodecError("counts beyond uint32")
    dtype = "<u1" if top <= 0xFF else "<u2" if top <= 0xFFFF else "<u4"
    return values.astype(dtype)


def decode(blob: bytes) -> np.ndarray:
    """Density grids come back as float64, count grids as int64 (2-D; a grid with unit
    counts as the ``(2, H, W)`` stack of counts and units)."""
    if len(blob) < _HEADER.size:
        raise CodecError("truncated grid")
    magic, version, kind, height, width, scale = _HEADER.unpack_from(blob)
    if magic != _MAGIC or version not in (1, 2):
        raise CodecError("not a grid")
    if kind not in (_DENSITY, _COUNTS, _COUNTS_UNITS):
        raise CodecError(f"unknown grid kind {kind}")
    try:
        raw = zlib.decompress(blob[_HEADER.size :])
    except zlib.error as exc:
        raise CodecError("corrupt grid payload") from exc
    cells = height * width
    if kind == _COUNTS_UNITS:
        planes = _unshuffle(raw, 2 * cells, (1, 2, 4)).reshape(2, height, width).astype(np.int64)
        return np.stack([planes[0], planes[0] - planes[1]])
    if version == 1:
        size = 2 if kind == _DENSITY else 4
        if len(raw) != cells * size:
            raise CodecError("grid payload does not match its shape")
        flat = np.frombuffer(raw, dtype=f"<u{size}")
    else:
        flat = _unshuffle(raw, cells, (2,) if kind == _DENSITY else (1, 2, 4))
    if kind == _COUNTS:
        return flat.reshape(height, width).astype(np.int64)
    quantized = flat.reshape(height, width)
    if version == 2:
        quantized = _plane_integral(_unzigzag(quantized))
    values = quantized.astype(np.float64)
    values *= scale  # in place: each fresh 0.5 MB array costs more in page faults than in maths
    return values


def _quantize(values: np.ndarray) -> tuple[U16, float]:
    """Levels 0..4095 of the peak, scaled in place; scale is the value of one level."""
    peak = float(values.max(initial=0.0))
    if peak == 0:
        return values.astype(np.uint16), 1.0
    factor = LEVELS / peak
    if math.isfinite(factor):
        values *= factor
    else:  # a peak below ~2e-305: 4095 / peak overflows, values / peak does not
        values /= peak
        values *= LEVELS
    scale = peak / LEVELS
    if scale * LEVELS > peak:  # rounded up: the decoded peak would exceed the true one, or inf
        scale = math.nextafter(scale, 0.0)
    return np.rint(values, out=values).astype(np.uint16), scale


def _plane_residual(q: U16) -> U16:
    """q - left - up + up_left, modulo 2**16 (a delta along columns, then along rows)."""
    rows = q.copy()
    rows[1:] -= q[:-1]
    out = rows.copy()
    out[:, 1:] -= rows[:, :-1]
    return out


def _plane_integral(residual: U16) -> U16:
    """Inverse of _plane_residual, the decoder's main cost, so tuned (1.5x, measured).

    Sums run in uint32, which numpy adds faster than uint16 and which wraps compatibly (2**16
    divides 2**32), and only down columns, where numpy adds whole rows at once; the sum along
    rows runs down the columns of a transposed copy.
    """
    down = np.cumsum(residual, axis=0, dtype=np.uint32)
    across = np.ascontiguousarray(down.T)
    np.cumsum(across, axis=0, out=across)
    return across.T.astype(np.uint16, order="C")


def _zigzag(d: U16) -> U16:
    signed = d.view(np.int16)
    return ((signed << 1) ^ (signed >> 15)).view(np.uint16)


def _unzigzag(z: U16) -> U16:
    return (z >> 1) ^ np.negative(z & 1)


def _shuffle(values: np.ndarray) -> bytes:
    size = values.dtype.itemsize
    little = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    return little.reshape(-1).view(np.uint8).reshape(-1, size).T.tobytes()


def _unshuffle(raw: bytes, cells: int, sizes: tuple[int, ...]) -> np.ndarray:
    size = len(raw) // cells if cells else sizes[0]
    if size not in sizes or len(raw) != cells * size:
        raise CodecError("grid payload does not match its shape")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(size, cells)
    out = np.empty((cells, size), dtype=np.uint8)
    for i, plane in enumerate(planes):  # one plane at a time: 5x faster than copying planes.T
        out[:, i] = plane
    return out.view(f"<u{size}").reshape(cells)


def _pack(kind: int, shape: tuple[int, ...], scale: float, payload: bytes) -> bytes:
    height, width = shape
    blob = _HEADER.pack(_MAGIC, _VERSION, kind, height, width, scale) + zlib.compress(payload, 1)
    if len(blob) > ITEM_LIMIT:  # pragma: no cover - bounded by the tile size, see docstring
        raise CodecError("grid too large for one item")
    return blob
