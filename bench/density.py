"""Benchmark of the density engine (shared/geo/density.py) against KDEpy and scipy's gaussian_kde.

Not a test: it prints Markdown tables for docs/BENCHMARKS.md.

    python bench/density.py            # full run, ~5 minutes on 2 cores
    python bench/density.py --quick    # N <= 1M, fewer repeats, ~1 minute

Workload: seeded points on the unit square, 80 % in 5 Gaussian clusters (std 0.02-0.08) and
20 % uniform noise; Gaussian bandwidth h = 0.01 (sigma = 2.56 cells on the 256 grid, 10.24 on
the 1024 grid). Every method evaluates the same cells: a G x G grid of cell centres over the
unit square, computed on a grid padded by ceil(4 sigma) cells (how callers use the engine)
and cropped. Errors are max |estimate - exact| / peak of the exact Gaussian sum at N = 10k.
All code measured is single-threaded; times are the best CPU time of several runs (see
``clock``), and the load average is printed because the dev box is shared.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/density.py` from a checkout
    sys.path.insert(0, str(ROOT))

from shared.geo import density as engine  # noqa: E402

try:
    import KDEpy
except ImportError:  # pragma: no cover - told to the user below
    KDEpy = None

H = 0.01  # bandwidth on the unit square
GRIDS = (256, 1024)
SEED = 20261127


def make_points(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A few clusters plus uniform noise, all inside the unit square, in random order."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.30, 0.35], [0.72, 0.28], [0.55, 0.70], [0.18, 0.80], [0.85, 0.85]])
    spreads = np.array([0.02, 0.05, 0.08, 0.03, 0.04])
    n_cluster = int(0.8 * n)
    label = rng.integers(0, len(centres), n_cluster)
    pts = centres[label] + rng.normal(size=(n_cluster, 2)) * spreads[label, None]
    pts = np.concatenate([pts, rng.random((n - n_cluster, 2))])
    outside = ~((pts > 0) & (pts < 1)).all(axis=1)
    while outside.any():  # redraw stragglers uniformly: keeps N exact and the square closed
        pts[outside] = rng.random((int(outside.sum()), 2))
        outside = ~((pts > 0) & (pts < 1)).all(axis=1)
    rng.shuffle(pts)
    return np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])


@dataclass(frozen=True)
class Grid:
    """A G x G crop over the unit square and the padded grid it is computed on."""

    g: int

    @property
    def sigma(self) -> float:
        return H * self.g

    @property
    def pad(self) -> int:
        return math.ceil(4 * self.sigma)

    @property
    def padded(self) -> tuple[int, int]:
        return (self.g + 2 * self.pad, self.g + 2 * self.pad)

    def crop(self, a: np.ndarray) -> np.ndarray:
        return a[self.pad : self.pad + self.g, self.pad : self.pad + self.g]

    def centres(self) -> np.ndarray:
        """Unit-square coordinates of the padded grid's cell centres along one axis."""
        return (np.arange(self.padded[0]) - self.pad + 0.5) / self.g


def clock() -> float:
    """CPU seconds of this process. Every method here runs on one thread, so on a quiet box
    this equals wall time; on the shared dev box it keeps other people's jobs out of the
    numbers (cache and memory-bandwidth contention still get in)."""
    return time.process_time()


def best_of(fn: Callable[[], object], repeats: int, budget: float = 20.0) -> float:
    """Best CPU time of up to `repeats` runs, stopping early once `budget` seconds are used."""
    best = math.inf
    spent = 0.0
    for _ in range(repeats):
        t0 = clock()
        fn()
        dt = clock() - t0
        best = min(best, dt)
        spent += dt
        if spent > budget:
            break
    return best


# --- the methods, each returning the sum of pdfs per unit^2 on the cropped grid --------------


def run_engine(x: np.ndarray, y: np.ndarray, grid: Grid) -> np.ndarray:
    dens = engine.density(
        x * grid.g + grid.pad, y * grid.g + grid.pad, grid.padded, grid.sigma, 1.0 / grid.g**2
    )
    return grid.crop(dens)


def run_engine_uncorrected(x: np.ndarray, y: np.ndarray, grid: Grid) -> np.ndarray:
    """Plain linear binning + smooth(sigma): shows what density()'s binning correction buys."""
    binned = engine.linear_bin(x * grid.g + grid.pad, y * grid.g + grid.pad, grid.padded)
    return grid.crop(engine.smooth(binned, grid.sigma)) * grid.g**2


def kdepy_grid(grid: Grid) -> np.ndarray:
    c = grid.centres()
    gx, gy = np.meshgrid(c, c, indexing="ij")  # KDEpy's order: first coordinate slowest
    return np.column_stack([gx.ravel(), gy.ravel()])


def run_kdepy(data: np.ndarray, grid: Grid, points: np.ndarray) -> np.ndarray:
    values = KDEpy.FFTKDE(kernel="gaussian", bw=H).fit(data).evaluate(points)
    n = grid.padded[0]
    return grid.crop(values.reshape(n, n).T) * data.shape[0]  # rows = y, columns = x


def isotropic_kde(x: np.ndarray, y: np.ndarray) -> stats.gaussian_kde:
    """gaussian_kde with kernel covariance h^2 I. Its public API scales the *data* covariance,
    so the (private) cached data covariance is replaced by I before setting the bandwidth."""
    kde = stats.gaussian_kde(np.vstack([x, y]))
    kde._data_covariance = np.eye(2)
    kde._data_cho_cov = np.eye(2)
    kde.set_bandwidth(H)
    return kde


def run_gaussian_kde(x: np.ndarray, y: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    return isotropic_kde(x, y)(np.vstack([qx, qy])) * x.size


def bincount4(u: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The textbook numpy linear binning the engine is measured against: one flat index, then
    4 weighted np.bincount calls (grid padded by one cell, coordinates clamped, no masks)."""
    rows, cols = shape
    wp = cols + 2
    xp = np.clip(u + 0.5, 0.0, cols + 1.0)
    yp = np.clip(v + 0.5, 0.0, rows + 1.0)
    ix, iy = np.floor(xp), np.floor(yp)
    fx, fy = xp - ix, yp - iy
    k = (iy * wp + ix).astype(np.intp)
    size = (rows + 3) * wp + 1
    out = np.bincount(k, (1 - fx) * (1 - fy), minlength=size)
    out[1:] += np.bincount(k, fx * (1 - fy), minlength=size)[:-1]
    out[wp:] += np.bincount(k, (1 - fx) * fy, minlength=size)[:-wp]
    out[wp + 1 :] += np.bincount(k, fx * fy, minlength=size)[: -wp - 1]
    return out[: (rows + 2) * wp].reshape(rows + 2, wp)[1:-1, 1:-1]


# --- report -----------------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def smooth_time(counts: np.ndarray, sigma: float, method: engine.SmoothMethod) -> float:
    t0 = clock()
    engine.smooth(counts, sigma, method=method)
    return clock() - t0


def crossover(quick: bool) -> str:
    sigmas = (
        [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0]
        if quick
        else [2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 16.0]
    )
    rng = np.random.default_rng(SEED)
    rows = []
    found: dict[int, float | None] = {}
    for g in GRIDS:
        fft_wins = []
        for s in sigmas:
            pad = math.ceil(4 * s)
            counts = rng.poisson(1.0, (g + 2 * pad, g + 2 * pad)).astype(np.float64)
            t_nd = t_ff = math.inf
            for _ in range(3 if quick else 9):  # interleaved, so load drifts hit both alike
                t_nd = min(t_nd, smooth_time(counts, s, "ndimage"))
                t_ff = min(t_ff, smooth_time(counts, s, "fft"))
            fft_wins.append(t_ff < t_nd)
            rows.append([str(g), f"{s:g}", fmt_ms(t_nd), fmt_ms(t_ff), f"{t_nd / t_ff:.2f}"])
        # smallest sigma from which the FFT wins at every larger sigma tested
        found[g] = next((s for i, s in enumerate(sigmas) if all(fft_wins[i:])), None)
    out = table(["grid", "sigma (cells)", "ndimage ms", "fftconvolve ms", "ndimage / fft"], rows)
    summary = ", ".join(
        f"grid {g}: sigma >= {s:g}" if s is not None else f"grid {g}: none"
        for g, s in found.items()
    )
    return (
        f"{out}\n\nFFT wins from: {summary}. "
        f"FFT_SIGMA_THRESHOLD in shared/geo/density.py = {engine.FFT_SIGMA_THRESHOLD:g}."
    )


@dataclass
class Run:
    """Settings of one benchmark run and what earlier sections measured."""

    quick: bool
    kde_budget: float
    sizes: list[int]
    reps: int
    x: np.ndarray
    y: np.ndarray
    kde_rate: float = 0.0  # gaussian_kde seconds per (point, cell) pair


def crop_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Flattened unit-square coordinates (x, y) of the crop's cell centres, row-major."""
    c = grid.centres()[grid.pad : grid.pad + grid.g]
    qx, qy = np.meshgrid(c, c)
    return qx.ravel(), qy.ravel()


def error_section(run: Run) -> None:
    n_err = 10_000
    x, y = run.x[:n_err], run.y[:n_err]
    names = ["engine", "engine, no binning correction", "KDEpy FFTKDE", "gaussian_kde"]
    errors: dict[tuple[str, int], float] = {}
    for g in GRIDS:
        grid = Grid(g)
        qx, qy = crop_centres(grid)
        exact = engine.exact_density(x, y, qx, qy, H).reshape(g, g)
        peak = exact.max()
        ests = {
            names[0]: run_engine(x, y, grid),
            names[1]: run_engine_uncorrected(x, y, grid),
            names[2]: run_kdepy(np.column_stack([x, y]), grid, kdepy_grid(grid)),
        }
        for name, est in ests.items():
            errors[name, g] = float(np.abs(est - exact).max() / peak)
        # gaussian_kde is exact by construction but slow: check it on 2000 random cells + peak.
        idx = np.append(
            np.random.default_rng(g).choice(g * g, 2000, replace=False), int(np.argmax(exact))
        )
        kde_vals = run_gaussian_kde(x, y, qx[idx], qy[idx])
        errors[names[3], g] = float(np.abs(kde_vals - exact.ravel()[idx]).max() / peak)
    rows = [[name] + [f"{errors[name, g]:.3%}" for g in GRIDS] for name in names]
    print("### Error at N = 10k (max abs error / peak of the exact Gaussian sum)\n")
    print(table(["method"] + [f"grid {g} (sigma {Grid(g).sigma:g} cells)" for g in GRIDS], rows))
    print("\n(gaussian_kde: on 2000 random cells plus the peak cell.)\n")


def time_kdepy(data: np.ndarray, grid: Grid, points: np.ndarray, reps: int) -> float:
    """KDEpy's better time of two ways to get the same number of grid points: our padded
    grid passed explicitly, or its own automatic grid (cheaper at 1024, dearer at 256)."""
    n = grid.padded[0]
    explicit = best_of(lambda: run_kdepy(data, grid, points), reps)
    auto = best_of(lambda: KDEpy.FFTKDE(kernel="gaussian", bw=H).fit(data).evaluate((n, n)), reps)
    return min(explicit, auto)


def timing_section(run: Run) -> None:
    rows = []
    ratio_rows = []
    for g in GRIDS:
        grid = Grid(g)
        points = kdepy_grid(grid)
        for n in run.sizes:
            x, y = run.x[:n], run.y[:n]
            u, v = x * g + grid.pad, y * g + grid.pad
            r = run.reps if n <= 1_000_000 else 3
            t_eng = best_of(lambda x=x, y=y, grid=grid: run_engine(x, y, grid), r)
            t_bin = best_of(lambda u=u, v=v, grid=grid: engine.linear_bin(u, v, grid.padded), r)
            binned = engine.linear_bin(u, v, grid.padded)
            t_smooth = best_of(lambda b=binned, grid=grid: engine.smooth(b, grid.sigma), r)
            t_b4 = best_of(lambda u=u, v=v, grid=grid: bincount4(u, v, grid.padded), r)
            t_kdepy = time_kdepy(np.column_stack([x, y]), grid, points, r)
            t_kde = run.kde_rate * n * g * g
            if t_kde <= run.kde_budget:
                qx, qy = crop_centres(grid)
                t_kde = best_of(lambda x=x, y=y, qx=qx, qy=qy: run_gaussian_kde(x, y, qx, qy), 1)
                kde_txt = fmt_s(t_kde)
            else:
                kde_txt = f"{fmt_s(t_kde)} extrapolated"
            rows.append(
                [
                    f"{n:,}",
                    str(g),
                    fmt_ms(t_eng),
                    fmt_ms(t_bin),
                    fmt_ms(t_smooth),
                    f"{n / t_bin / 1e6:.0f}",
                    f"{n / t_b4 / 1e6:.0f}",
                    fmt_ms(t_kdepy),
                    kde_txt,
                ]
            )
            ratio_rows.append(
                [
                    f"{n:,}",
                    str(g),
                    f"{t_kdepy / t_eng:.1f}x",
                    f"{t_kde / t_eng:,.0f}x",
                    f"{t_b4 / t_bin:.1f}x",
                ]
            )
    print("### Time (CPU ms unless stated; binning rates in M points/s)\n")
    print(
        table(
            [
                "N",
                "grid",
                "engine total",
                "engine binning",
                "engine smoothing",
                "engine binning M/s",
                "4x bincount M/s",
                "KDEpy FFTKDE",
                "gaussian_kde",
            ],
            rows,
        )
    )
    print(
        f"\n(gaussian_kde measured where its estimate, {run.kde_rate * 1e9:.1f} ns per "
        f"point x cell, is <= {run.kde_budget:g} s; otherwise extrapolated from that rate. "
        "Engine total = padded density + crop; binning rates at small N are dominated by "
        "the per-cell cost of the grid.)\n"
    )
    print("### Ratios measured in this run\n")
    print(
        table(
            [
                "N",
                "grid",
                "KDEpy / engine",
                "gaussian_kde / engine",
                "engine binning vs 4x bincount",
            ],
            ratio_rows,
        )
    )


def uniform_binning_section(run: Run) -> None:
    """Worst case for binning: uniform points touch the whole grid, so fewer cache hits."""
    n = 1_000_000 if run.quick else 10_000_000
    rng = np.random.default_rng(SEED + 1)
    xu, yu = rng.random(n), rng.random(n)
    rows = []
    for g in GRIDS:
        grid = Grid(g)
        u, v = xu * g + grid.pad, yu * g + grid.pad
        t_bin = best_of(lambda u=u, v=v, grid=grid: engine.linear_bin(u, v, grid.padded), 3)
        t_b4 = best_of(lambda u=u, v=v, grid=grid: bincount4(u, v, grid.padded), 3)
        rows.append([f"{n:,}", str(g), f"{n / t_bin / 1e6:.0f}", f"{n / t_b4 / 1e6:.0f}"])
    print("\n### Binning, uniform random points (worst case for cache locality)\n")
    print(table(["N", "grid", "engine binning M/s", "4x bincount M/s"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N <= 1M, fewer repeats")
    parser.add_argument(
        "--kde-budget",
        type=float,
        default=None,
        help="run gaussian_kde only where its estimated time is below this many "
        "seconds, extrapolate the rest (default 30, quick 5)",
    )
    args = parser.parse_args(argv)
    if KDEpy is None:
        print("KDEpy is missing: pip install -r bench/requirements.txt", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    quick: bool = args.quick
    sizes = [10_000, 100_000, 1_000_000] + ([] if quick else [10_000_000])
    x, y = make_points(max(sizes))
    budget = args.kde_budget if args.kde_budget is not None else (5.0 if quick else 30.0)
    run = Run(quick=quick, kde_budget=budget, sizes=sizes, reps=3 if quick else 5, x=x, y=y)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__},"
        f" KDEpy {KDEpy.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"bandwidth h = {H} of the unit square; seed {SEED}; "
        f"{'--quick' if quick else 'full run'}; load average at start "
        f"{os.getloadavg()[0]:.2f} (other work on the box inflates timings)\n"
    )

    # gaussian_kde's cost is ~ N x cells: measure its rate once on a small case.
    qx, qy = crop_centres(Grid(GRIDS[0]))
    n0 = 1000
    t0 = best_of(lambda: run_gaussian_kde(x[:n0], y[:n0], qx, qy), 2)
    run.kde_rate = t0 / (n0 * qx.size)

    error_section(run)
    timing_section(run)
    uniform_binning_section(run)
    print("\n### Smoothing crossover: scipy.ndimage vs fftconvolve (Poisson counts, 4-sigma pad)\n")
    print(crossover(quick))
    print(
        f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s; "
        f"load average at end {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
