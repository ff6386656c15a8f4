"""A run's tiles (workers.tilecache): read strongly consistent, once a run, and the same
tiles written as by chunks that read afresh; in-process against mock_aws."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.workers.support import World, grid_items, twin_world
from workers import recompute
from workers.tilecache import StoredTiles


def test_the_recompute_reads_the_tiles_it_writes_back_strongly_consistent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = world.grids.get_many
    reads: list[bool] = []

    def recording(keys: Any, *, consistent: bool = False) -> dict[str, tuple[bytes, str]]:
        reads.append(consistent)
        return real(keys, consistent=consistent)

    monkeypatch.setattr(world.grids, "get_many", recording)
    world.add(51.5, -0.12)
    world.recompute()
    world.add(51.5001, -0.12)
    world.recompute()  # reads the tiles the first run wrote
    assert reads and all(reads)


def test_a_run_reads_each_tile_once_and_writes_what_chunks_reading_afresh_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    # A second world in the same emulator, same settings but its tables, whose chunks read
    # every tile afresh (as before a run kept the tiles it read and wrote).
    twin = twin_world()

    class Forgetful(StoredTiles):
        def get(self, key: str) -> tuple[bool, bytes | None]:
            return False, None

    pz = world.pyramid.partition_zoom
    width = 360.0 / (1 << pz)
    lons = [10.0 + width * (i + 0.5) for i in range(3)]  # three partitions of one tile
    for i, lon in enumerate(lons):
        for w in (world, twin):
            w.add(51.5, lon, rid=f"00000000-0000-4000-8000-00000000000{i}")
    real = world.grids.get_many
    read: list[str] = []

    def counting(keys: Any, *, consistent: bool = False) -> dict[str, tuple[bytes, str]]:
        read.extend(keys := list(keys))
        return real(keys, consistent=consistent)

    monkeypatch.setattr(world.grids, "get_many", counting)
    assert world.recompute().markers == 3
    # The chunks share their tiles, and the later ones knew what the earlier ones wrote.
    assert read and len(read) == len(set(read))
    monkeypatch.setattr(recompute, "StoredTiles", Forgetful)
    assert twin.recompute().markers == 3
    mine, theirs = grid_items(world), grid_items(twin)
    assert len(mine) > 100 and mine == theirs


def test_stored_tiles_forget_everything_past_their_limit() -> None:
    tiles = StoredTiles(limit_bytes=10)
    tiles.put("a", b"12345")
    tiles.put("b", None)
    assert tiles.get("a") == (True, b"12345") and tiles.get("b") == (True, None)
    tiles.put("c", b"123456")
    assert tiles.get("a") == (False, None) and tiles.get("c") == (False, None)
