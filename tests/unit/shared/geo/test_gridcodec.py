from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from shared.geo import gridcodec

HEADER = struct.Struct("<2sBBHHd")


def v1_density(grid: np.ndarray) -> bytes:
    """Version 1 exactly as it was written to DynamoDB: 65535 levels, no filter."""
    values = np.maximum(np.asarray(grid, dtype=np.float64), 0.0)
    peak = float(values.max(initial=0.0))
    scale = peak / 65535.0 if peak > 0 else 1.0
    payload = np.rint(values / scale).astype("<u2").tobytes()
    return HEADER.pack(b"SH", 1, 1, *values.shape, scale) + zlib.compress(payload, 1)


def v1_counts(grid: np.ndarray) -> bytes:
    payload = np.asarray(grid).astype("<u4").tobytes()
    return HEADER.pack(b"SH", 1, 2, *grid.shape, 1.0) + zlib.compress(payload, 1)


def city_tile(points: int, seed: int) -> np.ndarray:
    """A compute-zoom density tile: clustered reports, binned and smoothed with sigma 4 cells."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(30, 230, size=(6, 2))
    xy = centres[rng.integers(0, 6, points)] + rng.normal(0, 30, size=(points, 2))
    binned, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=260, range=[[0, 260], [0, 260]])
    return ndimage.gaussian_filter(binned, 4.0) * 3.1e-7


def assert_density_round_trip(grid: np.ndarray) -> np.ndarray:
    back = gridcodec.decode(gridcodec.encode_density(grid))
    assert back.dtype == np.float64 and back.shape == grid.shape
    peak = float(np.max(grid, initial=0.0))
    assert np.all(np.abs(back - np.maximum(grid, 0)) <= peak / 8190 * (1 + 1e-9) + 1e-300)
    return back


def test_density_round_trip_within_quantization() -> None:
    grid = np.random.default_rng(1).random((260, 260)) * 37.5
    assert_density_round_trip(grid)


@pytest.mark.parametrize(
    "grid",
    [
        np.zeros((260, 260)),
        np.full((7, 9), 1e-300),  # tiny, and flat
        np.array([[5e-324, 0.0], [0.0, 1e-320]]),  # subnormal: 4095 / peak overflows
        np.eye(260) * 1e300,  # huge peak on a diagonal
        np.full((3, 3), np.finfo(np.float64).max),  # one level more would be inf
        np.ones((1, 300)),
        np.ones((300, 1)),
        np.arange(3 * 500, dtype=np.float64).reshape(3, 500),
        np.array([[-1e-17, 2.0], [0.5, -3.0]]),  # negative FFT ringing clamps to 0
    ],
    ids=["zeros", "tiny", "subnormal", "huge", "max-float", "row", "column", "ramp", "negative"],
)
def test_density_edge_cases(grid: np.ndarray) -> None:
    back = assert_density_round_trip(grid)
    assert np.all(back >= 0) and np.all(np.isfinite(back))
    assert back.max(initial=0.0) <= max(grid.max(), 0.0)


def test_single_spike_is_exact_at_the_peak() -> None:
    grid = np.zeros((260, 260))
    grid[0, 0] = grid[259, 259] = 0.25
    grid[130, 17] = 1.0
    back = assert_density_round_trip(grid)
    assert back[130, 17] == pytest.approx(1.0, rel=1e-12)
    assert np.count_nonzero(back) == 3


def test_residuals_that_wrap_round_trip() -> None:
    """Neighbours 0 and 4095 make residuals of -8190..8190, which wrap modulo 2**16."""
    checker = (np.indices((64, 65)).sum(axis=0) % 2) * 7.0
    stripes = np.tile([0.0, 7.0, 7.0, 0.0, 3.5], (40, 13))
    for grid in (checker, stripes, checker[::-1, ::-1].copy()):
        back = assert_density_round_trip(grid)
        assert np.array_equal(back == 0, grid == 0)


def test_filter_inverts_on_any_uint16() -> None:
    """The filter is exact modulo 2**16, so whatever wraps inside it comes back."""
    rng = np.random.default_rng(5)
    for shape in ((1, 1), (1, 70), (70, 1), (33, 47), (260, 260)):
        q = rng.integers(0, 2**16, size=shape, dtype=np.uint16)
        filtered = gridcodec._zigzag(gridcodec._plane_residual(q))
        assert np.array_equal(gridcodec._plane_integral(gridcodec._unzigzag(filtered)), q)


@pytest.mark.parametrize("top", [0, 1, 255, 256, 65535, 65536, 2**31, 2**32 - 1])
def test_counts_are_exact_at_every_width(top: int) -> None:
    counts = np.zeros((256, 256), dtype=np.int64)
    counts[3, 4] = 7
    counts[255, 0] = top
    counts[128, 128:140] = np.arange(12) * (top // 12)
    back = gridcodec.decode(gridcodec.encode_counts(counts))
    assert back.dtype == np.int64 and np.array_equal(back, counts)


def test_counts_beyond_uint32_fail_loudly() -> None:
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_counts(np.array([[2**32]]))
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_counts(np.array([[-1]]))


@pytest.mark.parametrize("shape", [(256, 256), (260, 260), (1, 5), (9, 2), (0, 4)])
def test_version_1_blobs_still_decode(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    density = rng.random(shape) * 1e-3
    counts = rng.integers(0, 100_000, size=shape)
    old_density, old_counts = v1_density(density), v1_counts(counts)
    assert old_density[2] == old_counts[2] == 1
    back = gridcodec.decode(old_density)
    assert back.dtype == np.float64 and back.shape == shape
    assert np.all(np.abs(back - density) <= density.max(initial=0) / 65535 / 2 + 1e-18)
    back_counts = gridcodec.decode(old_counts)
    assert back_counts.dtype == np.int64 and np.array_equal(back_counts, counts)


def test_new_blobs_are_version_2_and_decode_writable() -> None:
    for blob in (gridcodec.encode_density(np.ones((4, 4))), gridcodec.encode_counts(np.eye(4))):
        assert blob[:3] == b"SH\x02"
        back = gridcodec.decode(blob)
        back[0, 0] = 9  # the pyramid edits decoded tiles in place
        assert back.flags.c_contiguous


def test_dense_city_tile_is_much_smaller_than_before() -> None:
    for points, seed in ((300, 11), (1000, 12)):
        tile = city_tile(points, seed)
        new, old = gridcodec.encode_density(tile), v1_density(tile)
        assert len(new) < len(old) / 2, (len(new), len(old))
        assert len(new) < 64 * 1024
        assert np.max(np.abs(gridcodec.decode(new) - tile)) <= tile.max() / 8190 * (1 + 1e-9)


def test_worst_case_tile_fits_one_item() -> None:
    noise = np.random.default_rng(2).random((260, 260))
    assert len(gridcodec.encode_density(noise)) < gridcodec.ITEM_LIMIT
    worst_counts = np.random.default_rng(2).integers(0, 2**32, size=(256, 256))
    assert len(gridcodec.encode_counts(worst_counts)) < gridcodec.ITEM_LIMIT


def test_empty_grid_and_garbage() -> None:
    assert not gridcodec.decode(gridcodec.encode_density(np.zeros((4, 4)))).any()
    assert not gridcodec.decode(gridcodec.encode_counts(np.zeros((4, 4), dtype=int))).any()
    good = gridcodec.encode_density(np.ones((4, 4)))
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(b"not a grid at all, definitely")
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(good[:10])
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(good[:-3])  # truncated zlib stream
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(good[:2] + b"\x03" + good[3:])  # a version from the future
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(HEADER.pack(b"SH", 2, 1, 4, 4, 1.0) + zlib.compress(bytes(31)))
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_density(np.array([[np.nan]]))
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_density(np.array([[-np.inf, 1.0]]))


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.floats(0, 1e6, allow_nan=False),
    ),
)
def test_density_round_trip_property(grid: np.ndarray) -> None:
    assert_density_round_trip(grid)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.int64,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.integers(0, 2**32 - 1),
    ),
)
def test_counts_round_trip_property(grid: np.ndarray) -> None:
    assert np.array_equal(gridcodec.decode(gridcodec.encode_counts(grid)), grid)


def test_counts_with_unit_counts_round_trip_and_collapse_when_every_report_is_a_unit() -> None:
    rng = np.random.default_rng(9)
    counts = rng.integers(0, 300, (256, 256))
    units = np.minimum(counts, rng.integers(0, 300, (256, 256)))
    stack = np.stack([counts, units])
    decoded = gridcodec.decode(gridcodec.encode_counts(stack))
    assert decoded.shape == (2, 256, 256)
    np.testing.assert_array_equal(decoded, stack)
    # Every report a unit: the very bytes of the counts alone, read back as 2-D.
    same = np.stack([counts, counts])
    assert gridcodec.encode_counts(same) == gridcodec.encode_counts(counts)
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_counts(np.stack([counts, counts + 1]))
