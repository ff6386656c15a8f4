"""Reads kept from one recompute run to the next (workers.runlog), in-process against mock_aws.

Two caches stand for two worker processes taking turns, as runs do under load."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from shared.geo import gridcodec
from shared.model.report import Report
from shared.store.grids import Marker
from shared.store.keys import partition_key
from shared.store.points import StoredPoint
from tests.unit.workers.support import NOW, World, count_queries, make_world, tiles_at
from workers import recompute, runlog
from workers.runlog import PointCache, RunLog


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def process(world: World, clock: Clock | None = None, max_reports: int = 10_000) -> PointCache:
    log = RunLog(world.grids._ddb, world.grids._table)
    return PointCache(log, max_reports, clock or Clock())


def run(world: World, cache: PointCache | None) -> recompute.RecomputeResult:
    return recompute.recompute(
        world.grids, world.recomputer, "test", 60, NOW, NOW.isoformat(), cache=cache
    )


def side_by_side(world: World, n: int = 2) -> tuple[list[float], list[str]]:
    pz = world.pyramid.partition_zoom
    width = 360.0 / (1 << pz)
    lons = [10.0 + width * (i + 0.5) for i in range(n)]
    return lons, [partition_key(pz, *world.pyramid.partition_of(lon, 51.5)) for lon in lons]


def snapshot(world: World, lons: list[float]) -> dict[str, np.ndarray]:
    return {
        k: gridcodec.decode(v[0]) for k, v in world.grids.get_many(tiles_at(world, lons)).items()
    }


def same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> bool:
    """Equal up to the order in which reports were summed (the cache's order is not a read's)."""
    return got.keys() == want.keys() and all(
        np.allclose(got[k], want[k], rtol=1e-9, atol=0) for k in got
    )


def fresh(world: World, keys: list[str], lons: list[float]) -> dict[str, np.ndarray]:
    """The tiles as a run that reads everything afresh writes them."""
    for key in keys:
        world.grids.mark_dirty(key, ["all|all"])  # marks without reports: read afresh
    run(world, None)
    return snapshot(world, lons)


def take_turns(world: World) -> tuple[list[float], list[str], PointCache]:
    """A process reads A and B; another runs next, B's new report next to A reaching it
    through its mark; then a report in A waits for the first process's next run, whose step
    reaches into B."""
    lons, keys = side_by_side(world)
    width = lons[1] - lons[0]
    world.add(51.5, lons[0])
    world.add(51.5, lons[1])
    first, second = process(world), process(world)
    run(world, first)
    world.add(51.5, lons[0] + width * 0.52)
    run(world, second)
    world.add(51.5, lons[0] - width * 0.1)
    return lons, keys, first


def test_a_process_resumes_warm_with_what_the_run_between_consumed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lons, keys, first = take_turns(world)
    queried = count_queries(world, monkeypatch)
    run(world, first)
    assert queried == []  # warm: both were read before, B's new report came by the log
    got = snapshot(world, lons)
    assert same(got, fresh(world, keys, lons))


def test_without_the_log_the_resumed_process_would_miss_a_report(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above fails without the replay: the log is what keeps it right."""
    lons, keys, first = take_turns(world)
    monkeypatch.setattr(RunLog, "between", lambda *_: iter(()))
    run(world, first)
    assert not same(snapshot(world, lons), fresh(world, keys, lons))


def test_a_mark_without_reports_consumed_elsewhere_makes_the_partition_read_afresh(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lons, (a, b) = side_by_side(world)
    world.add(51.5, lons[0])
    world.add(51.5, lons[1])
    first, second = process(world), process(world)
    run(world, first)
    # Stored without a carried mark (a redelivery after a crash between the two writes).
    late = Report(str(uuid.uuid4()), 51.5001, lons[1], "harassment", "", NOW, NOW)
    world.reports.store_many([(late, b)])
    world.grids.mark_dirty(b, ["all|all"])
    run(world, second)
    world.add(51.5, lons[0])
    queried = count_queries(world, monkeypatch)
    run(world, first)
    assert queried == [b]
    assert same(snapshot(world, lons), fresh(world, [a, b], lons))


def test_a_cache_too_old_too_big_or_too_far_behind_starts_cold(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lons, keys = side_by_side(world)
    clock = Clock()
    cache = process(world, clock)
    for lon in lons:
        world.add(51.5, lon)
    run(world, cache)
    assert set(keys) <= set(cache.points)
    # Read longer ago than MAX_AGE_S: read again.
    clock.now += runlog.MAX_AGE_S + 1
    cache.begin()
    assert cache.points == {}
    # More reports than the process may keep.
    small = process(world, Clock(), max_reports=1)
    run(world, small)
    world.add(51.5, lons[0])
    run(world, small)
    assert set(keys) <= set(small.points)
    assert small.begin() == {}
    # Further behind than the log keeps: started cold, and the log trimmed.
    behind = process(world)
    world.add(51.5, lons[0])
    run(world, behind)
    assert behind.points
    log = RunLog(world.grids._ddb, world.grids._table)
    for _ in range(runlog.KEEP_RUNS + 1):
        log.next_run()
    world.add(51.5, lons[1])
    queried = count_queries(world, monkeypatch)
    run(world, behind)
    assert set(keys) <= set(queried)
    entries = world.grids._ddb.query(
        TableName=world.grids._table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": runlog.LOG_PK}},
    )["Items"]
    assert behind.run is not None
    runs = {int(entry["sk"]["S"].split("#")[0]) for entry in entries}
    assert runs == {behind.run}  # the older runs' entries are gone


def test_a_chunk_too_large_for_one_item_is_logged_as_partitions_to_read_afresh(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runlog, "MAX_ENTRY_BYTES", 100)
    point = StoredPoint(0.1, 51.5, "harassment", NOW, str(uuid.uuid4()))
    log = RunLog(world.grids._ddb, world.grids._table)
    log.record(7, 0, [Marker("15/1/1", frozenset({"all|all"}), points=(point,) * 3)])
    log.record(7, 1, [Marker("15/1/2", frozenset({"all|all"}), points=(point,))])
    entries: list[Any] = list(log.between(6, 8))
    assert entries == [({}, ["15/1/1"]), ({"15/1/2": (point,)}, [])]


def test_a_process_that_ran_the_last_run_itself_reads_no_log(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own run is the last: nothing to replay, and no query whose bounds cross."""
    lons, _ = side_by_side(world)
    cache = process(world)
    world.add(51.5, lons[0])
    run(world, cache)
    asked: list[str] = []
    query = RunLog._query

    def recorded(self: RunLog, condition: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(condition)
        return query(self, condition, *args, **kwargs)

    monkeypatch.setattr(RunLog, "_query", recorded)
    world.add(51.5, lons[1])
    run(world, cache)
    assert not any("BETWEEN" in condition for condition in asked)
    assert list(RunLog(world.grids._ddb, world.grids._table).between(5, 6)) == []
