from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shared import gridcodec


def test_density_round_trip_within_quantization() -> None:
    rng = np.random.default_rng(1)
    grid = rng.random((260, 260)) * 37.5
    back = gridcodec.decode(gridcodec.encode_density(grid))
    assert back.shape == grid.shape
    assert np.max(np.abs(back - grid)) <= grid.max() / 65535 / 2 + 1e-12


def test_worst_case_tile_fits_one_item() -> None:
    noise = np.random.default_rng(2).random((260, 260))
    assert len(gridcodec.encode_density(noise)) < gridcodec.ITEM_LIMIT
    assert len(gridcodec.encode_counts(np.full((256, 256), 2**31))) < gridcodec.ITEM_LIMIT


def test_counts_are_exact() -> None:
    counts = np.zeros((256, 256), dtype=np.int64)
    counts[3, 4] = 7
    counts[255, 0] = 123456
    back = gridcodec.decode(gridcodec.encode_counts(counts))
    assert back.dtype == np.int64 and np.array_equal(back, counts)


def test_empty_grid_and_garbage() -> None:
    assert not gridcodec.decode(gridcodec.encode_density(np.zeros((4, 4)))).any()
    with pytest.raises(gridcodec.CodecError):
        gridcodec.decode(b"not a grid at all, definitely")
    with pytest.raises(gridcodec.CodecError):
        gridcodec.encode_density(np.array([[np.nan]]))


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.floats(0, 1e6, allow_nan=False),
    ),
)
def test_density_round_trip_property(grid: np.ndarray) -> None:
    back = gridcodec.decode(gridcodec.encode_density(grid))
    assert back.shape == grid.shape
    assert np.all(np.abs(back - grid) <= grid.max() / 65535 / 2 * (1 + 1e-9) + 1e-12)
