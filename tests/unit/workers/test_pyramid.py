"""The tile pyramid (workers.pyramid) against exact Gaussian sums, in-process against mock_aws."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from shared.geo import density, gridcodec
from shared.geo.tiles import TILE, cell_ground_m, lonlat_to_world, tile_bounds, world_to_lonlat
from shared.store.keys import grid_key
from tests.unit.workers.support import (
    NOW,
    World,
    as_if,
    full_run_writes,
    grid_items,
    total,
    twin_world,
)

R_EARTH = 6_378_137.0


def exact_per_km2(
    lat: np.ndarray,
    lon: np.ndarray,
    qlat: np.ndarray,
    qlon: np.ndarray,
    lat0: float,
    sigma_m: float,
) -> np.ndarray:
    """The exact Gaussian sum on the ground (local metres around lat0), reports per km^2."""
    k = math.pi / 180 * R_EARTH
    px, py = lon * k * math.cos(math.radians(lat0)), lat * k
    qx, qy = qlon * k * math.cos(math.radians(lat0)), qlat * k
    return density.exact_density(px, py, qx, qy, sigma_m) * 1e6


def cell_centres(z: int, r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    n = TILE << z
    rows, cols = np.meshgrid(np.arange(r0, r1) + 0.5, np.arange(c0, c1) + 0.5, indexing="ij")
    lon, lat = world_to_lonlat(cols / n, rows / n)
    return lat, lon


def test_compute_zoom_matches_exact_sum_across_a_tile_corner(world: World) -> None:
    zc = world.pyramid.compute_zoom
    # A cluster centred exactly on the corner shared by four compute-zoom tiles.
    tx, ty = 2046, 1361
    west, _, _, north = tile_bounds(zc, tx, ty)
    rng = np.random.default_rng(11)
    lat = north + rng.normal(0, 0.004, 40)
    lon = west + rng.normal(0, 0.006, 40)
    for a, b in zip(lat, lon, strict=True):
        world.add(float(a), float(b))
    assert world.recompute().markers >= 4
    r0, c0 = ty * TILE - 64, tx * TILE - 64
    got = world.region("all|all", zc, r0, c0, r0 + 128, c0 + 128)
    qlat, qlon = cell_centres(zc, r0, c0, r0 + 128, c0 + 128)
    want = exact_per_km2(lat, lon, qlat.ravel(), qlon.ravel(), north, 200.0).reshape(got.shape)
    assert want.max() > 0
    err = np.abs(got - want).max() / want.max()
    assert err <= 0.01, f"max error {err:.4f} of the peak"


def test_finer_zoom_is_interpolated_without_seams(world: World) -> None:
    zc = world.pyramid.compute_zoom
    tx, ty = 2046, 1361
    west, _, _, north = tile_bounds(zc, tx, ty)
    rng = np.random.default_rng(5)
    lat = north + rng.normal(0, 0.003, 30)
    lon = west + rng.normal(0, 0.004, 30)
    for a, b in zip(lat, lon, strict=True):
        world.add(float(a), float(b))
    world.recompute()
    z = zc + 2
    r0, c0 = (ty << 2) * TILE - 200, (tx << 2) * TILE - 200
    got = world.region("all|all", z, r0, c0, r0 + 400, c0 + 400)
    qlat, qlon = cell_centres(z, r0, c0, r0 + 400, c0 + 400)
    want = exact_per_km2(lat, lon, qlat.ravel(), qlon.ravel(), north, 200.0).reshape(got.shape)
    assert np.abs(got - want).max() / want.max() <= 0.015


def test_coarser_counts_sum_children_and_keep_the_mass(world: World) -> None:
    rng = np.random.default_rng(3)
    for _ in range(25):
        world.add(float(40.0 + rng.normal(0, 0.02)), float(-3.7 + rng.normal(0, 0.02)))
    world.recompute()
    for z in range(world.pyramid.compute_zoom + 1):
        mx, my = lonlat_to_world(np.array([-3.7]), np.array([40.0]))
        x, y = int(mx[0] * (1 << z)), int(my[0] * (1 << z))
        keys = [
            grid_key("c", "all|all", z, x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
        ]
        found = world.grids.get_many(keys)
        assert sum(int(gridcodec.decode(blob).sum()) for blob, _ in found.values()) == 25, z
    # Density integrates to the number of reports at a coarse zoom too (reports per km^2).
    z = world.pyramid.compute_zoom - 3
    mx, my = lonlat_to_world(np.array([-3.7]), np.array([40.0]))
    n = TILE << z
    r, c = int(my[0] * n), int(mx[0] * n)
    values = world.region("all|all", z, r - 40, c - 40, r + 40, c + 40)
    area = (cell_ground_m(z, 40.0) / 1000) ** 2
    assert values.sum() * area == pytest.approx(25, rel=0.03)


def test_one_isolated_report_is_invisible_and_three_close_ones_show(private_world: World) -> None:
    w = private_world
    zc = w.pyramid.compute_zoom
    w.add(10.0, 10.0)
    w.recompute()
    for z in range(0, zc + 3):
        mx, my = lonlat_to_world(np.array([10.0]), np.array([10.0]))
        x, y = int(mx[0] * (1 << z)), int(my[0] * (1 << z))
        assert w.reader.tiles("all|all", z, [(x, y)])[(x, y)].values is None, z
    w.add(10.0005, 10.0)
    w.add(10.0, 10.0005)
    w.recompute()
    mx, my = lonlat_to_world(np.array([10.0]), np.array([10.0]))
    x, y = int(mx[0] * (1 << zc)), int(my[0] * (1 << zc))
    tile = w.reader.tiles("all|all", zc, [(x, y)])[(x, y)]
    assert tile.values is not None and tile.values.max() > 0


def test_layers_filter_by_category_and_window(world: World) -> None:
    world.add(0.5, 0.5, category="theft", occurred_at=NOW - timedelta(days=20))
    world.recompute()
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([0.5]), np.array([0.5]))
    xy = (int(mx[0] * (1 << zc)), int(my[0] * (1 << zc)))

    def shown(layer: str) -> bool:
        return world.reader.tiles(layer, zc, [xy])[xy].values is not None

    assert shown("all|all") and shown("theft|30d") and shown("theft|365d")
    assert not shown("theft|7d") and not shown("harassment|all")


def test_layers_holding_the_same_reports_in_a_step_are_smoothed_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = density.density

    def counted(u: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(u))
        return real(u, *args, **kwargs)

    monkeypatch.setattr(density, "density", counted)
    world.add(51.5, -0.1)
    world.add(51.5001, -0.1)  # both recent harassment: every layer holds the same two
    world.recompute()
    assert calls == [2]
    zc = world.pyramid.compute_zoom
    assert total(world, zc, 51.5, -0.1, "all|30d") == total(world, zc, 51.5, -0.1) == 2
    world.add(51.5002, -0.1, category="theft", occurred_at=NOW - timedelta(days=40))
    calls.clear()
    world.recompute()
    # The old report marks the layers it is in: `all` within 365 days and all time (the same
    # three reports) and theft's (the same one); and, as a category's masks changed, all's
    # shorter windows are decided again (the same two reports: their smoothing is new, as the
    # memo lives for one run).
    assert sorted(calls) == [1, 2, 3]
    assert total(world, zc, 51.5, -0.1, "all|30d") == 2
    assert total(world, zc, 51.5, -0.1, "all|all") == 3
    assert full_run_writes(world) == 0


def test_a_cell_does_not_depend_on_which_partitions_were_recomputed_with_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """London's and Paris's steps write some of the same coarse cells. Each cell used to be
    divided by the area of a cell at its step's centre, so its value depended on which step
    wrote it last: 12 % at zoom 0 after London was recomputed alone."""
    twin = twin_world()
    for w in (world, twin):
        w.add(51.5003, -0.1202)
        w.add(48.85, 2.35)
    world.recompute()
    before = grid_items(world)
    for w in (world, twin):
        w.add(51.5, -0.12)  # London alone, in the world; both at once, in the twin
        assert w.recompute().markers
    assert as_if(grid_items(twin), grid_items(world), before)
