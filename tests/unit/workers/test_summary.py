"""Where the page opens: the densest shown cell of the `all` layer's coarse tiles."""

from __future__ import annotations

import numpy as np
import pytest

from shared.geo import gridcodec
from shared.geo.tiles import APRON, TILE
from shared.store.keys import grid_key
from tests.unit.workers.support import World
from web.resources.meta import opening
from workers import summary


def _tile(cells: dict[tuple[int, int], float]) -> np.ndarray:
    grid = np.zeros((TILE + 2 * APRON, TILE + 2 * APRON), dtype=np.float32)
    for (row, col), value in cells.items():
        grid[APRON + row, APRON + col] = value
    return grid


def test_densest_cell_is_chosen_and_apron_ignored() -> None:
    grid = _tile({(10, 20): 3.0, (100, 200): 7.5})
    grid[0, 0] = 99.0  # the apron belongs to the neighbour tile
    assert summary.densest_cell(grid) == (100, 200, 7.5)


def test_hidden_cells_are_ignored() -> None:
    grid = _tile({(5, 5): 2.0, (6, 6): np.nan, (7, 7): -4.0})
    assert summary.densest_cell(grid) == (5, 5, 2.0)


def test_empty_tile_gives_none() -> None:
    assert summary.densest_cell(_tile({})) is None
    assert summary.pick({}, 16) is None


def test_cell_centre_of_the_world_tile() -> None:
    lat, lon = summary.cell_centre(0, 0, 0, TILE // 2, TILE // 2)
    assert lat == pytest.approx(-0.70, abs=0.01) and lon == pytest.approx(0.70, abs=0.01)


def _store(world: World, x: int, y: int, cells: dict[tuple[int, int], float]) -> None:
    key = grid_key("d", summary.LAYER, summary.SUMMARY_ZOOM, x, y)
    world.grids.put_many({key: gridcodec.encode_density(_tile(cells))}, "t")


def test_refresh_keeps_the_densest_tile_and_drops_emptied_ones(world: World) -> None:
    z = summary.SUMMARY_ZOOM
    _store(world, 10, 20, {(1, 1): 2.0})
    _store(world, 30, 40, {(2, 2): 9.0})
    # Partitions (finer zooms) inside both tiles.
    parts = [f"{z + 4}/{10 * 16 + 3}/{20 * 16 + 5}", f"{z + 4}/{30 * 16}/{40 * 16}"]
    chosen = summary.refresh(world.grids, world.pyramid, parts)
    assert chosen is not None and chosen.value == pytest.approx(9.0, rel=0.01)
    lat, lon = summary.cell_centre(z, 30, 40, 2, 2)
    assert (chosen.lat, chosen.lon) == (pytest.approx(lat, abs=1e-4), pytest.approx(lon, abs=1e-4))
    assert opening(world.grids.get_summary()) == {
        "lat": chosen.lat,
        "lon": chosen.lon,
        "zoom": summary.OPEN_ZOOM,
    }
    _store(world, 30, 40, {})  # reports removed: the tile shows nothing any more
    again = summary.refresh(world.grids, world.pyramid, parts[1:])
    assert again is not None and again.value == pytest.approx(2.0, rel=0.01)


def test_no_reports_no_opening(world: World) -> None:
    assert summary.refresh(world.grids, world.pyramid, []) is None
    assert opening(world.grids.get_summary()) is None
    assert opening(None) is None and opening("not json") is None


def test_recompute_result_names_its_partitions(world: World) -> None:
    world.add(51.5, -0.09)
    result = world.recompute()
    chosen = summary.refresh(world.grids, world.pyramid, result.partitions)
    assert result.partitions and chosen is not None
    assert chosen.lat == pytest.approx(51.5, abs=0.01) and chosen.lon == pytest.approx(
        -0.09, abs=0.01
    )
