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
from dataclasses import dataclass

import numpy as np
import scipy
from density_methods import (
    GRIDS,
    SEED,
    Grid,
    H,
    KDEpy,
    best_of,
    bincount4,
    clock,
    crop_centres,
    engine,
    kdepy_grid,
    make_points,
    run_engine,
    run_engine_uncorrected,
    run_gaussian_kde,
    run_kdepy,
)

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
