"""Removing reports on request (shared.removal): the items go, and every grid follows, even in
worker processes that had read the partition before (in-process, mock_aws)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared import gridcodec
from shared.removal import remove_reports
from shared.report import Report, report_id
from shared.settings import Settings
from tests.unit.test_pyramid import NOW, World, _grid_items, make_world
from tests.unit.test_runlog import fresh, process, run, same, side_by_side, snapshot


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="1")


def test_a_removed_report_leaves_every_grid_as_if_it_had_never_come(world: World) -> None:
    # A second world in the same emulator, same settings but its own tables.
    names = {"REPORTS_TABLE": "twin-reports", "GRIDS_TABLE": "twin-grids"}
    env = {f"SAFETYHEATMAP_{k}": v for k, v in ({"PRIVACY_MIN_REPORTS": "1"} | names).items()}
    twin = World(Settings.from_env(env))
    keep = [(51.5, -0.12, "theft"), (51.5004, -0.1203, "harassment")]
    for w in (world, twin):
        for i, (lat, lon, category) in enumerate(keep):
            w.add(lat, lon, category, rid=f"00000000-0000-4000-8000-00000000000{i}")
    gone = world.add(51.5002, -0.1201, "assault")  # its category appears nowhere else
    for w in (world, twin):
        assert w.recompute().markers
    assert _grid_items(world) != _grid_items(twin)

    found = remove_reports(world.reports, world.grids, [gone, str(uuid.uuid4())])
    assert list(found) == [gone]  # the unknown id is simply not found
    assert gone not in world.reports.ids()
    assert world.recompute().markers == 1
    mine, theirs = _grid_items(world), _grid_items(twin)
    assert {k: v for k, v in mine.items() if k in theirs} == theirs
    # The removed report's own layers keep their tiles, now empty (as when a window rolls on).
    assert all(not gridcodec.decode(mine[k]).any() for k in mine.keys() - theirs.keys())
    assert any(k.startswith("d#assault") for k in mine.keys() - theirs.keys())


def test_a_keyed_reports_guard_goes_too(world: World) -> None:
    keyed = report_id("a client's Idempotency-Key")
    report = Report(keyed, 51.5, -0.12, "theft", "", NOW, NOW)
    assert world.reports.store_many([(report, "15/1/2")]) == [True]
    assert world.reports.partition_of_id(keyed) == "15/1/2"  # found through its guard
    assert remove_reports(world.reports, world.grids, [keyed]) == {keyed: ["15/1/2"]}
    assert world.reports.partition_of_id(keyed) is None  # neither the report nor its guard
    assert world.reports.store_many([(report, "15/1/2")]) == [True]  # a retry: stored anew


def test_no_worker_process_puts_a_removed_report_back_from_its_memory(world: World) -> None:
    """A process read both partitions, another consumed the removal's mark; when the first
    runs again for a neighbour's new report, it must not use what it read of the partition
    before the removal."""
    lons, keys = side_by_side(world)
    world.add(51.5, lons[0])
    gone = world.add(51.5, lons[1] - (lons[1] - lons[0]) * 0.45)  # near A: A's step reaches it
    first, second = process(world), process(world)
    run(world, first)
    remove_reports(world.reports, world.grids, [gone])
    run(world, second)
    world.add(51.5, lons[0])  # A again: its step reads B's reports, from memory where known
    run(world, first)
    assert same(snapshot(world, lons), fresh(world, keys, lons))
