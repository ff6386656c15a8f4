"""The background pass (workers.background): its cadence, its slices and pieces, its marks;
the tiles in the end those of a recompute of everything; in-process against mock_aws."""

from __future__ import annotations

from typing import Any

import pytest

from shared.store.grids import Marker
from shared.store.keys import partition_key
from tests.unit.workers.support import NOW, Clock, World, deferred, full_run_writes, total
from workers import background, recompute


def test_background_work_follows_its_cadence_and_category_layers_catch_up_when_quiet(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pass ends on its slice of time: on a busy box (the suite runs two files at once) one
    # second may not finish it. Slicing has its own test; here every due pass completes.
    monkeypatch.setattr(background, "BACKGROUND_SHARE", 1e6)
    clock = Clock()
    world.add(10.0, 10.0)
    first = deferred(world, clock)
    assert first.background_layers > 0 and first.background_in is None  # quiet: at once
    assert total(world, 5, 10.0, 10.0) == 1
    assert full_run_writes(world) == 0

    # Under load: another report is marked while the run works and the run's budget ends.
    run = world.recomputer.run

    def report_during_next_run(lat: float) -> None:
        def busy_run(*args: object, **kwargs: object) -> int:
            written = run(*args, **kwargs)  # type: ignore[arg-type]
            monkeypatch.setattr(world.recomputer, "run", run)
            world.add(lat, 10.0)
            return written

        monkeypatch.setattr(world.recomputer, "run", busy_run)

    report_during_next_run(10.002)
    clock.t += 10
    world.add(10.001, 10.0)
    second = deferred(world, clock, budget_s=0.0)
    assert second.more
    zc = world.pyramid.compute_zoom
    assert total(world, zc, 10.001, 10.0) >= 1  # `all` layers at fine zooms: this run
    assert total(world, 9, 10.0, 10.0) == 2
    assert total(world, 8, 10.0, 10.0) == 1  # overview zooms: later
    assert total(world, 9, 10.0, 10.0, "harassment|all") == 1  # category layers: later
    assert total(world, 9, 10.0, 10.0, "all|30d") == 2  # the map's default window: now
    assert total(world, 9, 10.0, 10.0, "all|7d") == 1  # the other windows: later
    assert second.background_layers == 0
    assert second.background_in == pytest.approx(50.0)

    # Still under load when the cadence is up: the pass is not starved by `more`.
    report_during_next_run(10.003)
    clock.t += 50
    third = deferred(world, clock, budget_s=0.0)
    assert third.more and third.background_layers > 0 and not third.background_more
    assert total(world, 0, 10.0, 10.0) == 3
    # Category layers are derived from what is stored by then: the 4th report may be in.
    assert total(world, 9, 10.0, 10.0, "harassment|all") >= 3

    # The last report, then quiet: category layers at once, overview zooms on the cadence.
    fourth = deferred(world, clock)
    assert fourth.markers == 1 and fourth.background_layers > 0
    assert total(world, 9, 10.0, 10.0, "harassment|all") == 4
    assert total(world, 0, 10.0, 10.0) == 3
    assert fourth.background_in == pytest.approx(60.0)

    clock.t += 60  # the delayed run
    fifth = deferred(world, clock)
    assert fifth.markers == 0 and fifth.background_layers > 0 and fifth.background_in is None
    assert total(world, 0, 10.0, 10.0) == 4
    assert full_run_writes(world) == 0  # the same tiles as recomputing everything at once


def test_background_pass_is_sliced_by_piece_and_resumes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "BACKGROUND_SHARE", 0.0)
    clock = Clock()
    world.add(-5.0, 20.0, category="theft")
    runs = [deferred(world, clock)]
    while runs[-1].background_more:
        runs.append(deferred(world, clock))
    # At the fine zooms theft's 4 layers and all's 7- and 365-day windows, then the overview
    # zooms of 2 categories (all, theft) x 4 windows: a piece a run, each piece every layer of
    # its kind together (their privacy masks are decided together).
    assert [r.background_layers for r in runs] == [6, 8]
    assert world.grids.background_markers() == []
    assert full_run_writes(world) == 0


def test_a_layer_of_many_partitions_goes_in_pieces_the_rest_marked_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "BACKGROUND_SHARE", 0.0)
    monkeypatch.setattr(background, "BACKGROUND_PIECE", 1)
    world.add(-5.0, 20.0, category="theft")
    world.add(5.0, 20.0, category="theft")  # another partition
    runs = [deferred(world, Clock())]
    while runs[-1].background_more:
        assert {len(m.partitions) for m in world.grids.background_markers(100)} <= {1, 2}
        runs.append(deferred(world, Clock()))
    # The two pieces of above, each twice: one partition at a time.
    assert [r.background_layers for r in runs] == [6, 6, 8, 8]
    assert world.grids.background_markers() == []
    assert full_run_writes(world) == 0


def test_a_run_writes_each_background_mark_once_however_often_it_goes_round(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    monkeypatch.setattr(background, "BACKGROUND_SHARE", 0.0)  # the pass itself stays for later
    for lat in (10.0, 20.0):
        world.add(lat, 10.0, category="theft")
    first = world.grids.dirty_markers()[0]
    writes: list[tuple[str, str, frozenset[str]]] = []
    mark = world.grids.mark_background

    def counted(by_layer: dict[str, set[str]], kind: str) -> None:
        writes.extend((kind, layer, frozenset(parts)) for layer, parts in by_layer.items())
        mark(by_layer, kind)

    monkeypatch.setattr(world.grids, "mark_background", counted)
    run = world.recomputer.run
    rounds = iter(range(3))

    def under_load(markers: list[Marker], *args: Any, **kwargs: Any) -> int:
        if markers[0].partition == first.partition and next(rounds, None) is not None:
            world.grids.mark_dirty(first.partition, first.layers)  # marked again meanwhile
        return run(markers, *args, **kwargs)

    monkeypatch.setattr(world.recomputer, "run", under_load)
    result = recompute.recompute(
        world.grids,
        world.recomputer,
        "t",
        60,
        NOW,
        NOW.isoformat(),
        overview_zoom=8,
        background_every_s=60,
    )
    assert result.markers >= 4  # the first partition came round again, twice
    pairs = [(kind, layer, p) for kind, layer, parts in writes for p in parts]
    assert len(pairs) == len(set(pairs))  # no (kind, layer, partition) written twice
    waiting = {(m.kind, m.layer): m.partitions for m in world.grids.background_markers(100)}
    assert len(waiting[("overview", "all|all")]) == 2
    assert len(waiting[("fine", "theft|all")]) == 2  # both partitions wait, once each


def test_background_marks_added_while_a_pass_works_stay_for_the_next_pass(world: World) -> None:
    grids = world.grids
    grids.mark_background({"all|all": {"a"}, "theft|all": {"b"}}, "overview")
    grids.mark_background({"all|all": {"c"}}, "overview")
    first, second = grids.background_markers()
    assert (first.layer, first.partitions, len(first.keys)) == ("all|all", {"a", "c"}, 2)
    assert (second.layer, second.partitions) == ("theft|all", {"b"})
    assert [m.layer for m in grids.background_markers(limit=1)] == ["all|all"]
    grids.mark_background({"all|all": {"a"}}, "overview")  # while the pass recomputes `first`
    grids.clear_background(first)
    left = [(m.kind, m.layer, m.partitions) for m in grids.background_markers()]
    assert left == [("overview", "all|all", {"a"}), ("overview", "theft|all", {"b"})]


def test_a_due_background_pass_goes_between_the_chunks_of_a_busy_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not all after the last chunk: the run that follows and its reports waited for it."""
    monkeypatch.setattr(recompute, "MARKERS_PER_CHUNK", 1)
    monkeypatch.setattr(background, "BACKGROUND_SHARE", 1e6)
    pz = world.pyramid.partition_zoom
    lat_of = {partition_key(pz, *world.pyramid.partition_of(10.0, lat)): lat for lat in (10, 20)}
    for lat in lat_of.values():
        world.add(lat, 10.0, category="theft")
    first, second = (m.partition for m in world.grids.dirty_markers())
    events: list[str] = []
    run, clear = world.recomputer.run, world.grids.clear_background
    again = iter([True])

    def chunk(markers: list[Marker], *args: Any, **kwargs: Any) -> int:
        events.append("chunk")
        if markers[0].partition == second and next(again, False):
            world.add(lat_of[first] + 0.0001, 10.0, category="theft")  # the first, once more
        return run(markers, *args, **kwargs)

    def cleared(marker: Any) -> None:
        events.append("background")
        clear(marker)

    monkeypatch.setattr(world.recomputer, "run", chunk)
    monkeypatch.setattr(world.grids, "clear_background", cleared)
    result = deferred(world, Clock())
    assert result.markers == 3 and not result.more
    # The pass was due: it ran after the first chunk, before the second.
    assert events[:2] == ["chunk", "background"] and events.count("chunk") == 3
    # The pass cleared the first partition's marks, so the third chunk (the first partition
    # again) marked it anew. The overview waits for the cadence; the category layers went at
    # once, the run being quiet.
    waiting = {(m.kind, m.layer): m.partitions for m in world.grids.background_markers(100)}
    assert waiting[("overview", "all|all")] == {first, second}
    assert ("fine", "theft|all") not in waiting
    assert result.background_in == pytest.approx(60.0)
