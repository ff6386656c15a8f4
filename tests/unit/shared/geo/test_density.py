"""Unit tests of shared.geo.density against small exact references (whole file runs in seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.geo import density as dens
from shared.geo.density import (
    FFT_SIGMA_THRESHOLD,
    density,
    exact_density,
    gaussian_kernel_1d,
    linear_bin,
    simple_bin,
    smooth,
)


def brute_linear_bin(u: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """One point at a time, straight from the definition."""
    out = np.zeros(shape)
    for uu, vv in zip(u, v, strict=True):
        if not (np.isfinite(uu) and np.isfinite(vv)):
            continue
        x, y = uu - 0.5, vv - 0.5  # centre coordinates
        c0, r0 = math.floor(x), math.floor(y)
        fx, fy = x - c0, y - r0
        for dr, dc, w in (
            (0, 0, (1 - fx) * (1 - fy)),
            (0, 1, fx * (1 - fy)),
            (1, 0, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < shape[0] and 0 <= c < shape[1]:
                out[r, c] += w
    return out


# --- linear_bin -------------------------------------------------------------------------------


def test_linear_bin_points_at_centres_land_whole() -> None:
    u = np.array([0.5, 3.5, 3.5, 6.5])
    v = np.array([0.5, 2.5, 2.5, 4.5])
    got = linear_bin(u, v, (5, 7))
    want = np.zeros((5, 7))
    want[0, 0] = 1
    want[2, 3] = 2
    want[4, 6] = 1
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float64


def test_linear_bin_between_centres_splits_exactly() -> None:
    # (4.0, 2.5): halfway between centres of columns 3 and 4 on row 2.
    # (2.0, 1.0): the corner shared by 4 centres.
    # (1.75, 3.0): 1/4 of the way from column 1 to 2, halfway between rows 2 and 3.
    got = linear_bin(np.array([4.0, 2.0, 1.75]), np.array([2.5, 1.0, 3.0]), (5, 6))
    want = np.zeros((5, 6))
    want[2, 3] += 0.5
    want[2, 4] += 0.5
    want[0:2, 1:3] += 0.25
    want[2, 1] += 0.75 * 0.5
    want[2, 2] += 0.25 * 0.5
    want[3, 1] += 0.75 * 0.5
    want[3, 2] += 0.25 * 0.5
    np.testing.assert_array_equal(got, want)


def test_linear_bin_matches_point_by_point_definition() -> None:
    rng = np.random.default_rng(11)
    u = rng.uniform(-3, 12, 3000)  # many points in and around a 9 x 10 grid
    v = rng.uniform(-3, 12, 3000)
    np.testing.assert_allclose(
        linear_bin(u, v, (9, 10)), brute_linear_bin(u, v, (9, 10)), rtol=0, atol=1e-12
    )


def test_linear_bin_conserves_interior_mass_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dens, "_BIN_CHUNK", 1000)  # several chunks plus a ragged last one
    rng = np.random.default_rng(1)
    u = rng.uniform(0.5, 63.5, 5555)  # between the outermost centres: nothing can fall off
    v = rng.uniform(0.5, 31.5, 5555)
    got = linear_bin(u, v, (32, 64))
    assert got.sum() == pytest.approx(5555, rel=1e-12)
    assert got.min() >= 0
    np.testing.assert_allclose(got, brute_linear_bin(u, v, (32, 64)), atol=1e-12)


def test_linear_bin_drops_mass_beyond_edge_centres() -> None:
    shape = (4, 5)
    # 0.25 cells left of column 0's centre: 0.75 stays; likewise past the last column/row.
    got = linear_bin(np.array([0.25, 4.75, 2.5]), np.array([1.5, 2.5, 3.75]), shape)
    want = np.zeros(shape)
    want[1, 0] = 0.75
    want[2, 4] = 0.75
    want[3, 2] = 0.75
    np.testing.assert_allclose(got, want, atol=1e-15)
    # Points wholly outside (also far away) contribute nothing.
    far = linear_bin(
        np.array([-0.6, 5.6, 2.0, 1e12, -1e12]), np.array([2.0, 2.0, -0.6, 1.0, 1.0]), shape
    )
    assert not far.any()


def test_linear_bin_ignores_nan_and_inf() -> None:
    u = np.array([1.2, np.nan, 2.0, np.inf, 3.3, -np.inf, 1.0])
    v = np.array([1.7, 1.0, np.nan, 2.0, np.inf, 1.0, 1.0])
    got = linear_bin(u, v, (4, 5))
    want = linear_bin(np.array([1.2, 1.0]), np.array([1.7, 1.0]), (4, 5))
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).all()
    assert got.sum() == pytest.approx(2.0)


def test_linear_bin_empty_and_validation() -> None:
    assert not linear_bin(np.array([]), np.array([]), (3, 4)).any()
    with pytest.raises(ValueError, match="differ"):
        linear_bin(np.zeros(2), np.zeros(3), (3, 4))
    with pytest.raises(ValueError, match="positive"):
        linear_bin(np.zeros(2), np.zeros(2), (0, 4))


# --- simple_bin -------------------------------------------------------------------------------


def test_simple_bin_counts_whole_reports_per_cell() -> None:
    u = np.array([0.0, 0.99, 1.0, 4.999, 5.0, -0.01, np.nan, 2.5])
    v = np.array([0.0, 0.5, 0.0, 3.999, 1.0, 1.0, 1.0, np.inf])
    got = simple_bin(u, v, (4, 5))
    want = np.zeros((4, 5), dtype=np.int64)
    want[0, 0] = 2
    want[0, 1] = 1
    want[3, 4] = 1
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64


# --- smooth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ndimage", "fft"])
@pytest.mark.parametrize("sigma", [1.0, 2.5, 7.3])
def test_smooth_of_delta_is_sampled_normalised_gaussian(method: str, sigma: float) -> None:
    radius = int(4 * sigma + 0.5)
    size = 2 * radius + 11
    delta = np.zeros((size, size + 4))
    r0, c0 = size // 2, size // 2 + 2
    delta[r0, c0] = 3.0
    got = smooth(delta, sigma, method=method)  # type: ignore[arg-type]
    x = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    want = np.zeros_like(delta)
    want[r0 - radius : r0 + radius + 1, c0 - radius : c0 + radius + 1] = 3.0 * np.outer(g, g)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    assert got.sum() == pytest.approx(3.0, rel=1e-12)  # mass preserved away from the edges
    np.testing.assert_allclose(gaussian_kernel_1d(sigma), g, rtol=1e-15)


@pytest.mark.parametrize("sigma", [0.7, 2.5, 4.0, 8.0, 13.0])
def test_smoothing_paths_agree_including_edges(sigma: float) -> None:
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.3, (37, 61)).astype(np.float64)
    counts[0, :] += 5  # heavy mass on the edges, where "zero outside" matters
    counts[:, -1] += 2
    a = smooth(counts, sigma, method="ndimage")
    b = smooth(counts, sigma, method="fft")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * a.max())
    assert b.min() >= 0
    auto = smooth(counts, sigma)
    np.testing.assert_array_equal(auto, b if sigma >= FFT_SIGMA_THRESHOLD else a)


def test_smooth_zero_outside_and_validation() -> None:
    counts = np.zeros((9, 9))
    counts[0, 0] = 1.0  # a corner cell: the kernel's parts beyond row 0 / column 0 are lost
    g = gaussian_kernel_1d(2.0)
    kept = g[g.size // 2 :].sum() ** 2
    for method in ("ndimage", "fft"):
        out = smooth(counts, 2.0, method=method)  # type: ignore[arg-type]
        assert out.sum() == pytest.approx(kept, rel=1e-12)
    with pytest.raises(ValueError):
        smooth(counts, 0.0)
    with pytest.raises(ValueError):
        smooth(counts, 1.0, method="bogus")  # type: ignore[arg-type]
    assert 1.0 < FFT_SIGMA_THRESHOLD < 32.0


# --- density vs the exact Gaussian sum ---------------------------------------------------------


def clustered_points(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters inside the crop, on its edges, at its corner and just outside it, plus noise
    over the crop and its 4-sigma margin. Coordinates are crop cell units."""
    rows, cols = shape
    margin = math.ceil(4 * sigma)
    centres = [
        (cols * 0.45, rows * 0.5, 2.0 * sigma),  # interior
        (0.3, 0.6, sigma),  # top-left corner of the crop
        (cols - 0.2, rows * 0.3, 1.5 * sigma),  # straddling the right edge
        (cols * 0.3, rows + 1.5 * sigma, sigma),  # outside the crop, below it
        (cols * 0.7, rows - 0.5, 0.5 * sigma),  # tight cluster on the bottom edge
    ]
    us, vs = [], []
    per = n // (len(centres) + 1)
    for cu, cv, spread in centres:
        us.append(rng.normal(cu, spread, per))
        vs.append(rng.normal(cv, spread, per))
    us.append(rng.uniform(-margin, cols + margin, per))
    vs.append(rng.uniform(-margin, rows + margin, per))
    u, v = np.concatenate(us), np.concatenate(vs)
    # The caller's grid only covers the crop plus its margin: keep points inside that.
    keep = (u > -margin) & (u < cols + margin) & (v > -margin) & (v < rows + margin)
    return u[keep], v[keep]


@pytest.mark.parametrize(("sigma", "seed"), [(2.5, 1), (2.5, 2), (4.0, 3), (8.0, 4)])
def test_density_within_one_percent_of_exact_on_padded_then_cropped_grid(
    sigma: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    shape = (40, 56)
    u, v = clustered_points(rng, shape, sigma, 3000)
    margin = math.ceil(4 * sigma)
    padded = (shape[0] + 2 * margin, shape[1] + 2 * margin)
    area_km2 = 0.04  # 200 m cells
    got = density(u + margin, v + margin, padded, sigma, area_km2)
    got = got[margin : margin + shape[0], margin : margin + shape[1]]

    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    # exact_density is per cell^2 when coordinates are in cells; per km^2 divides by the area.
    want = exact_density(u, v, cc.ravel() + 0.5, rr.ravel() + 0.5, sigma).reshape(shape)
    want /= area_km2
    err = np.abs(got - want).max() / want.max()
    assert err <= 0.01, f"max error {err:.4%} of the peak"


@pytest.mark.parametrize(("sigma", "bound"), [(2.5, 0.028), (4.0, 0.011), (8.0, 0.003)])
def test_density_error_bound_for_reports_stacked_on_one_spot(sigma: float, bound: float) -> None:
    """The documented worst case: point masses, where binning error cannot average out."""
    margin = math.ceil(4 * sigma)
    shape = (2 * margin + 3, 2 * margin + 3)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    worst = 0.0
    for fu in (0.0, 0.25, 0.5):
        for fv in (0.0, 0.25, 0.5):
            u = np.full(5, margin + 1.5 + fu)
            v = np.full(5, margin + 1.5 + fv)
            got = density(u, v, shape, sigma, 1.0)
            want = exact_density(u, v, cc.ravel() + 0.5, rr.ravel() + 0.5, sigma).reshape(shape)
            worst = max(worst, float(np.abs(got - want).max() / want.max()))
    assert worst <= bound


def test_density_divides_by_cell_area() -> None:
    u, v = np.array([5.2, 6.9]), np.array([4.4, 5.0])
    a = density(u, v, (12, 12), 2.0, 1.0)
    b = density(u, v, (12, 12), 2.0, 0.25)
    np.testing.assert_allclose(b, 4 * a)
    with pytest.raises(ValueError):
        density(u, v, (12, 12), 2.0, 0.0)


# --- exact_density ----------------------------------------------------------------------------


def test_exact_density_matches_naive_sum_and_integrates_to_one() -> None:
    rng = np.random.default_rng(7)
    px, py = rng.normal(10, 3, 500), rng.normal(-4, 6, 500)
    qx, qy = rng.uniform(-20, 40, 3000), rng.uniform(-40, 30, 3000)
    s = 1.7
    d2 = (qx[:, None] - px[None, :]) ** 2 + (qy[:, None] - py[None, :]) ** 2
    naive = np.exp(-d2 / (2 * s * s)).sum(axis=1) / (2 * np.pi * s * s)
    np.testing.assert_allclose(exact_density(px, py, qx, qy, s), naive, rtol=1e-12, atol=1e-300)
    # One point: the pdf over a fine grid sums to 1.
    step = 0.1
    g = np.arange(-8, 8, step) + step / 2
    gx, gy = np.meshgrid(g, g)
    one = exact_density(np.array([0.0]), np.array([0.0]), gx.ravel(), gy.ravel(), 1.0)
    assert one.sum() * step * step == pytest.approx(1.0, rel=1e-6)
