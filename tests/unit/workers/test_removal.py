"""Removing reports on request (workers.removal): the items go, and every grid follows, even in
worker processes that had read the partition before (in-process, mock_aws)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shared.config.settings import Settings
from shared.geo import gridcodec
from shared.geo.tiles import lonlat_to_world
from shared.model.report import Report, report_id
from shared.store.keys import grid_key
from shared.store.reports import ReportRow
from tests.unit.workers.support import (
    NOW,
    Clock,
    World,
    as_if,
    deferred,
    grid_items,
    make_world,
)
from tests.unit.workers.test_runlog import fresh, process, run, same, side_by_side, snapshot
from workers import ingest, recompute
from workers.removal import Selection, remove_reports, remove_rows, select_reports


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="1")


@pytest.fixture
def private(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="3")


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
    assert grid_items(world) != grid_items(twin)

    found = remove_reports(world.reports, world.grids, [gone, str(uuid.uuid4())])
    assert list(found) == [gone]  # the unknown id is simply not found
    assert gone not in world.reports.ids()
    assert world.recompute().markers == 1
    mine, theirs = grid_items(world), grid_items(twin)
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


def _row(
    lon: float, lat: float, category: str, received: datetime, occurred: datetime
) -> ReportRow:
    return ReportRow(str(uuid.uuid4()), "15/1/2", lon, lat, category, occurred, received)


def test_a_selection_holds_all_its_conditions_with_half_open_bounds() -> None:
    t = NOW
    inside = _row(-0.125, 51.505, "theft", t, t - timedelta(days=1))
    sel = Selection(
        bbox=(-0.13, 51.50, -0.12, 51.51),
        category="theft",
        received_from=t,
        received_to=t + timedelta(hours=1),
        occurred_from=t - timedelta(days=2),
        occurred_to=t,
    )
    assert sel.matches(inside)
    assert not sel.is_empty() and Selection().is_empty()
    misses = [
        replace(inside, lon=-0.12),  # east edge: exclusive
        replace(inside, lat=51.499),
        replace(inside, category="harassment"),
        replace(inside, received_at=t - timedelta(microseconds=1)),
        replace(inside, received_at=t + timedelta(hours=1)),  # to: exclusive
        replace(inside, occurred_at=t),
    ]
    assert not any(sel.matches(row) for row in misses)
    assert sel.matches(replace(inside, lon=-0.13, lat=51.50))  # west and south: inclusive
    assert Selection(category="theft").matches(replace(inside, lon=170.0))
    with pytest.raises(ValueError):
        select_reports(None, Selection())  # type: ignore[arg-type]  # refused before any read


def _store(world: World, lat: float, lon: float, received: datetime, category: str) -> str:
    report = Report(str(uuid.uuid4()), lat, lon, category, "", NOW, received)
    ingest.store(report, world.reports, world.grids, world.pyramid, NOW)
    return report.id


def test_a_flood_selected_by_area_and_arrival_goes_and_the_grids_are_as_without_it(
    world: World,
) -> None:
    names = {"REPORTS_TABLE": "twin-reports", "GRIDS_TABLE": "twin-grids"}
    env = {f"SAFETYHEATMAP_{k}": v for k, v in ({"PRIVACY_MIN_REPORTS": "1"} | names).items()}
    twin = World(Settings.from_env(env))
    flood_at = NOW - timedelta(minutes=30)
    for w in (world, twin):
        _store(w, 51.5003, -0.1202, NOW - timedelta(days=2), "theft")  # in the area, before
        _store(w, 48.85, 2.35, flood_at, "theft")  # during the flood, elsewhere
    flood = {
        _store(world, 51.5 + k * 1e-4, -0.12 - k * 1e-4, flood_at + timedelta(seconds=k), "other")
        for k in range(6)
    }
    for w in (world, twin):
        assert w.recompute().markers

    before = grid_items(world)
    selection = Selection(bbox=(-0.13, 51.49, -0.11, 51.51), received_from=flood_at)
    rows = select_reports(world.reports, selection)
    assert {row.id for row in rows} == flood
    found = remove_rows(world.reports, world.grids, rows)
    assert set(found) == flood and not flood & set(world.reports.ids())
    assert len(world.reports.ids()) == 2
    assert world.recompute().markers
    mine, theirs = grid_items(world), grid_items(twin)
    assert as_if(theirs, {k: v for k, v in mine.items() if k in theirs}, before)
    assert all(not gridcodec.decode(mine[k]).any() for k in mine.keys() - theirs.keys())


def _peak(world: World, lat: float, lon: float) -> float:
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([lon]), np.array([lat]))
    key = grid_key("d", "all|all", zc, int(mx[0] * (1 << zc)), int(my[0] * (1 << zc)))
    ((blob, _),) = world.grids.get_many([key]).values()
    return float(gridcodec.decode(blob).max())


@pytest.mark.parametrize(
    ("step", "after"), [("run", 1), ("run", 3), ("run_layers", 1), ("run_layers", 3)]
)
def test_a_removal_while_a_run_goes_on_is_on_the_map_after_the_runs_that_follow(
    private: World, monkeypatch: pytest.MonkeyPatch, step: str, after: int
) -> None:
    """Removed between a run's chunks (`run`) or during its background pieces (`run_layers`)."""
    world = private
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    cluster = [world.add(-33.9 + d, 18.4 + d) for d in (0.0, 0.0005, -0.0005)]
    deferred(world, Clock())
    assert _peak(world, -33.9, 18.4) > 0  # three reports: on the map
    for lat in (10.0, 20.0, 30.0):  # a busy run: several chunks, background pieces
        for _ in range(3):
            world.add(lat, 10.0)
    original = getattr(world.recomputer, step)
    calls: list[int] = []

    def remove_midway(*args: Any, **kwargs: Any) -> int:
        written: int = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == after:
            remove_reports(world.reports, world.grids, [cluster[0]])
        return written

    monkeypatch.setattr(world.recomputer, step, remove_midway)
    deferred(world, Clock())
    deferred(world, Clock())  # the one the removal's trigger starts
    assert len(calls) >= after
    assert not world.grids.has_dirty()
    assert _peak(world, -33.9, 18.4) == 0  # two reports left: under the threshold
