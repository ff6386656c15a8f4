"""Web Mercator tile geometry and the pyramid's parameters.

Everything is expressed in *global cell coordinates* at a zoom: the world is
``256 * 2**z`` cells wide, cell (row, col) covers ``[col, col+1) x [row, row+1)``, row 0 at the
north edge. A tile ``z/x/y`` holds cells ``[256x, 256x+256) x [256y, 256y+256)``. The density
engine works in the same cell units, so no projection code leaks into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from shared.model.when import DAYS, LIGHTS

TILE = 256
EARTH_CIRCUMFERENCE_M = 40_075_016.686
MAX_LAT = 85.05112878
REACH_SIGMAS = 4.0
"""The kernel is truncated at 4 standard deviations: beyond that it weighs < 0.04% of its peak."""

APRON = 2
"""Density tiles carry 2 cells of their neighbours on each side so the web can interpolate finer
zooms (cubic) across tile edges without reading neighbours."""

STORED = TILE + 2 * APRON

COMPUTE_SIGMA_CELLS = 4.0
"""Smallest sigma (cells, at the equator) the finest computed zoom must reach. Linear binning
stays within 1% of the exact sum's peak from about 4 cells even for reports stacked on one spot
(2.7% at 2.5 cells); finer zooms are interpolated from it. Default: zoom 12, 38 m cells."""

PARTITION_SUBDIVISION = 2
"""Reports are partitioned by tiles this many zooms finer than the compute zoom (64x64 cells)."""

WINDOWS: dict[str, timedelta | None] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "365d": timedelta(days=365),
    "all": None,
}


def lonlat_to_world(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of the world (0..1) east of the antimeridian and south of the north edge."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -MAX_LAT, MAX_LAT)
    mx = (lon + 180.0) / 360.0
    phi = np.radians(lat)
    my = 0.5 - np.log(np.tan(np.pi / 4 + phi / 2)) / (2 * np.pi)
    return mx, my


def world_to_lonlat(
    mx: np.ndarray | float, my: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    mx = np.asarray(mx, dtype=np.float64)
    my = np.asarray(my, dtype=np.float64)
    lon = mx * 360.0 - 180.0
    lat = np.degrees(2 * np.arctan(np.exp((0.5 - my) * 2 * np.pi)) - np.pi / 2)
    return lon, lat


def world_cells(z: int) -> int:
    return TILE << z


def cell_ground_m(z: int, lat: float) -> float:
    """Ground size of one cell at a latitude (Mercator stretches by 1/cos(lat))."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    return EARTH_CIRCUMFERENCE_M * math.cos(math.radians(lat)) / world_cells(z)


def tile_center_lat(z: int, y: int) -> float:
    _, lat = world_to_lonlat(0.5, (y + 0.5) / (1 << z))
    return float(lat)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees."""
    n = 1 << z
    west, north = world_to_lonlat(x / n, y / n)
    east, south = world_to_lonlat((x + 1) / n, (y + 1) / n)
    return float(west), float(south), float(east), float(north)


@dataclass(frozen=True)
class Pyramid:
    """Which zooms are stored, how reports are partitioned and what sigma each zoom uses."""

    bandwidth_m: float
    max_zoom: int

    @property
    def compute_zoom(self) -> int:
        """Finest stored zoom: the first whose equatorial cell is <= bandwidth / 2.5."""
        target = self.bandwidth_m / COMPUTE_SIGMA_CELLS
        z = math.ceil(math.log2(EARTH_CIRCUMFERENCE_M / (TILE * target)))
        return max(0, min(self.max_zoom, z))

    @property
    def partition_zoom(self) -> int:
        return self.compute_zoom + PARTITION_SUBDIVISION

    @property
    def partition_cells(self) -> int:
        """Cells of the compute zoom along one side of a partition."""
        return TILE >> PARTITION_SUBDIVISION

    def sigma_cells(self, z: int, lat: float) -> float:
        """The bandwidth in cells at zoom z, floored at one cell so coarse zooms stay smooth."""
        return max(self.bandwidth_m / cell_ground_m(z, lat), 1.0)

    def bandwidth_used_m(self, z: int, lat: float) -> float:
        return self.sigma_cells(z, lat) * cell_ground_m(z, lat)

    @staticmethod
    def reach(sigma_cells: float) -> int:
        return math.ceil(REACH_SIGMAS * sigma_cells)

    def partition_of(self, lon: float, lat: float) -> tuple[int, int]:
        mx, my = lonlat_to_world(np.array([lon]), np.array([lat]))
        n = 1 << self.partition_zoom
        return (
            min(int(mx[0] * n), n - 1),
            min(int(my[0] * n), n - 1),
        )


ANY = "any"
"""A time filter that is not set: every light, or every day."""

TIME_ATOMS: tuple[str, ...] = tuple(f"{light}-{days}" for light in LIGHTS for days in DAYS)
"""The stored time slices: one light and one kind of day each, so a report is in exactly one
(``shared.model.when``). A filter on light alone, or on days alone, is the sum of two of them on
read (``stored_layers``): storing those too would add two more layers to every report's writes
(docs/ARCHITECTURE.md, "When it happens")."""


def layer_key(category: str, window: str, light: str = ANY, days: str = ANY) -> str:
    """``category|window``, and ``|light-days`` for a time slice (either part may be ``any``
    in a key that is read, never in one that is stored)."""
    if light == ANY and days == ANY:
        return f"{category}|{window}"
    return f"{category}|{window}|{light}-{days}"


@dataclass(frozen=True)
class Layer:
    category: str
    window: str
    light: str = ANY
    days: str = ANY

    @property
    def parent(self) -> str:
        """The layer of every time this one slices."""
        return layer_key(self.category, self.window)

    @property
    def timed(self) -> bool:
        return self.light != ANY or self.days != ANY


def parse_layer(layer: str) -> Layer:
    category, window, *time = layer.split("|")
    if not time:
        return Layer(category, window)
    light, days = time[0].split("-")
    return Layer(category, window, light, days)


def stored_layers(layer: str) -> list[str]:
    """The stored layers whose sum is ``layer``: itself, or the time atoms it spans."""
    parsed = parse_layer(layer)
    if not parsed.timed:
        return [layer]
    lights = LIGHTS if parsed.light == ANY else (parsed.light,)
    days = DAYS if parsed.days == ANY else (parsed.days,)
    return [layer_key(parsed.category, parsed.window, li, d) for li in lights for d in days]


def time_layers(layer: str) -> list[str]:
    """The stored time atoms of a layer of every time."""
    category, window = layer.split("|")
    return [f"{category}|{window}|{atom}" for atom in TIME_ATOMS]


def windows_containing(occurred_at: datetime, now: datetime) -> list[str]:
    """Windows a report falls in at `now`; 'all' always."""
    return [name for name, span in WINDOWS.items() if span is None or occurred_at >= now - span]
