"""A recompute run (workers.recompute): the lease, chunks round the marks, each partition
read once a run, the bookkeeping; in-process against mock_aws."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.geo import gridcodec
from shared.model.report import Report
from shared.store.grids import Marker
from shared.store.keys import TILES_WRITTEN, partition_key
from shared.store.points import StoredPoint
from tests.unit.workers.support import NOW, World, after_first_chunk, count_queries, tiles_at
from workers import recompute


def three_chunks(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report in each of three partitions, and chunks of one partition."""
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    for lat in (10.0, 20.0, 30.0):
        world.add(lat, 10.0)


def test_a_run_goes_round_the_marks_instead_of_serving_the_first_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_chunks(world, monkeypatch)
    partitions = [m.partition for m in world.grids.dirty_markers()]
    assert len(partitions) == 3
    served: list[str] = []
    run = world.recomputer.run

    def under_load(markers: list[Marker], *args: Any, **kwargs: Any) -> int:
        served.append(markers[0].partition)
        written = run(markers, *args, **kwargs)
        if len(served) < 5:  # the first partition is marked again while each chunk works
            world.grids.mark_dirty(partitions[0], ["all|all"])
        return written

    monkeypatch.setattr(world.recomputer, "run", under_load)
    result = recompute.recompute(world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat())
    assert served[:4] == [*partitions, partitions[0]]  # round, then round again
    assert result.markers == len(served) and not world.grids.dirty_markers()
    assert [m.partition for m in world.grids.dirty_markers(after=partitions[0])] == []
    for partition in partitions:
        world.grids.mark_dirty(partition, ["all|all"])
    after = [[m.partition for m in world.grids.dirty_markers(after=p)] for p in partitions]
    assert after == [partitions[1:], partitions[2:], []]


def test_a_run_reports_whose_reports_it_made_visible(world: World) -> None:
    world.add(30.0, 30.0)
    world.add(30.001, 30.0)
    seen: list[dict[int, int]] = []
    recompute.recompute(
        world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat(), on_visible=seen.append
    )
    assert seen == [{int(NOW.timestamp() * 10): 2}]
    seen.clear()
    recompute.recompute(
        world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat(), on_visible=seen.append
    )
    assert seen == []  # nothing was dirty: nobody's lag ends twice


def test_one_trigger_waits_for_a_held_lease_and_a_run_frees_its_place(world: World) -> None:
    world.add(10.0, 10.0)
    assert world.grids.acquire(recompute.LEASE, 60, "running")
    assert recompute.wait_for_lease(world.grids, "a", 60)  # the first trigger waits
    assert not recompute.wait_for_lease(world.grids, "b", 60)  # the next ones go
    assert recompute.wait_for_lease(world.grids, "a", 60)  # the waiter retries, still waiting
    args = (world.grids, world.recomputer, "a", 60, NOW, NOW.isoformat())
    assert not recompute.recompute(*args, waiter=True).ran  # the lease is still held
    world.grids.release(recompute.LEASE, "running")
    result = recompute.recompute(*args, waiter=True)
    assert result.ran and result.markers == 1
    # The waiter's run has started: a trigger that comes now waits for it in turn.
    assert world.grids.acquire(recompute.LEASE, 60, "a")
    assert recompute.wait_for_lease(world.grids, "c", 60)
    assert not recompute.wait_for_lease(world.grids, "a", 60)


def test_a_run_reads_each_partition_once_and_still_shows_what_it_gained_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    pz = world.pyramid.partition_zoom
    width = 360.0 / (1 << pz)  # one partition, in degrees of longitude
    lons = [10.0 + width * (i + 0.5) for i in range(3)]  # three partitions side by side
    keys = [partition_key(pz, *world.pyramid.partition_of(lon, 51.5)) for lon in lons]
    for lon in lons:
        world.add(51.5, lon)
    assert sorted(m.partition for m in world.grids.dirty_markers()) == sorted(keys)
    queried = count_queries(world, monkeypatch)
    # The first partition gains a report once it is done.
    run = after_first_chunk(world, monkeypatch, lambda: world.add(51.5001, lons[0]))
    assert world.recompute().markers == 4  # three partitions, then the first one again
    # Each partition is read once a run: the first chunk read all three, and the first one's
    # second mark carried its report.
    assert {p: queried.count(p) for p in set(queried)} == {p: 1 for p in set(queried)}
    assert set(keys) <= set(queried)
    # The tiles are those of a run that reads everything afresh: the fourth report counts.
    tiles = tiles_at(world, lons)
    stored = {k: v[0] for k, v in world.grids.get_many(tiles).items()}
    assert sum(gridcodec.decode(stored[k]).sum() for k in tiles if k.startswith("c#")) == 4
    monkeypatch.setattr(world.recomputer, "run", run)
    for key in keys:
        world.grids.mark_dirty(key, ["all|all"])
    world.recompute()
    assert {k: v[0] for k, v in world.grids.get_many(tiles).items()} == stored


def test_a_report_both_read_and_carried_counts_once_and_a_bare_mark_reads_afresh(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    pz = world.pyramid.partition_zoom
    width = 360.0 / (1 << pz)
    lons = [10.0 + width * (i + 0.5) for i in range(2)]  # partitions A and B, side by side
    a, b = (partition_key(pz, *world.pyramid.partition_of(lon, 51.5)) for lon in lons)
    for lon in lons:
        world.add(51.5, lon)
    # Stored, its mark not yet written (a store task between its two writes): chunk A's run
    # reads it with B, then B's mark brings it again.
    late = Report(str(uuid.uuid4()), 51.5001, lons[1], "harassment", "", NOW, NOW)
    world.reports.store_many([(late, b)])
    queried = count_queries(world, monkeypatch)

    def meanwhile() -> None:
        point = StoredPoint(late.lon, late.lat, late.category, late.occurred_at, late.id)
        world.grids.mark_dirty_many({b: {"all|all"}}, None, {b: [point]})
        world.grids.mark_dirty(a, ["all|all"])  # a window roll: a mark without reports

    after_first_chunk(world, monkeypatch, meanwhile)
    assert world.recompute().markers == 3  # A, B, then A again
    assert queried.count(b) == 1 and queried.count(a) == 2
    tiles = tiles_at(world, lons)
    stored = {k: v[0] for k, v in world.grids.get_many(tiles).items()}
    assert sum(gridcodec.decode(stored[k]).sum() for k in tiles if k.startswith("c#")) == 3


def test_a_run_of_several_chunks_records_its_time_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    width = 360.0 / (1 << world.pyramid.partition_zoom)
    for i in range(3):  # three partitions: three chunks
        world.add(51.5, 10.0 + width * (i + 0.5))
    real = world.grids.put_meta
    written: list[tuple[str, str]] = []

    def recording(name: str, value: str) -> None:
        written.append((name, value))
        real(name, value)

    monkeypatch.setattr(world.grids, "put_meta", recording)
    assert world.recompute().markers == 3
    assert [w for w in written if w[0] != TILES_WRITTEN] == [("last_computed_at", NOW.isoformat())]
    assert [name for name, _ in written].count(TILES_WRITTEN) == 3  # one per chunk's tiles


def test_a_failed_bookkeeping_fails_the_run_keeps_the_marks_and_frees_the_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(10.0, 10.0)

    def broken(markers: list[Marker]) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(world.grids, "clear_markers", broken)
    with pytest.raises(RuntimeError, match="store down"):
        world.recompute()
    assert world.grids.has_dirty()  # the retry recomputes the chunk
    assert world.grids.acquire(recompute.LEASE, 60, "another run")
