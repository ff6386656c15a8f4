"""The workload, timing and methods of bench/density.py (a helper, not a benchmark): seeded
points, the grids every method evaluates, CPU-time measurement, and the engine
(shared/geo/density.py), KDEpy, scipy's gaussian_kde and numpy's bincount as measured."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/density.py` from a checkout
    sys.path.insert(0, str(ROOT))

from shared.geo import density as engine  # noqa: E402

try:
    import KDEpy
except ImportError:  # pragma: no cover - told to the user by bench/density.py
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


def crop_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Flattened unit-square coordinates (x, y) of the crop's cell centres, row-major."""
    c = grid.centres()[grid.pad : grid.pad + grid.g]
    qx, qy = np.meshgrid(c, c)
    return qx.ravel(), qy.ravel()
