"""The grids table: tiles read as written (and the beacon moved by every write), marks merged
per partition and cleared exactly as read, leases that expire by themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.store.grids import GridRepository, stamp_time
from shared.store.keys import FINE, OVERVIEW, TILES_WRITTEN, grid_key
from shared.store.points import StoredPoint

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def point() -> StoredPoint:
    return StoredPoint(-0.1, 51.5, "theft", NOW, str(uuid.uuid4()))


def test_tiles_read_as_written_in_batches_and_each_write_moves_the_beacon(
    grids: GridRepository,
) -> None:
    blobs = {grid_key("d", "all#24h", 11, x, 681): bytes([x % 256]) * 3 for x in range(230)}
    assert grids.get_meta(TILES_WRITTEN) is None
    grids.put_many(blobs, "2026-11-27T12:00:00.000+00:00")
    beacon = grids.get_meta(TILES_WRITTEN)
    assert beacon is not None and beacon.startswith("2026-11-27T12:00:00.000+00:00 ")
    missing = grid_key("d", "all#24h", 11, 9999, 681)
    wanted = [*blobs, *blobs, missing]  # more than a batch, repeats, one that does not exist
    got = grids.get_many(wanted, consistent=True)
    assert got == {k: (b, beacon) for k, b in blobs.items()}  # computed_at and the write's id
    assert stamp_time(beacon) == "2026-11-27T12:00:00.000+00:00"
    grids.put_many({missing: b"x"}, "2026-11-27T12:00:01.000+00:00")
    assert grids.get_meta(TILES_WRITTEN) not in (None, beacon)
    moved = grids.get_meta(TILES_WRITTEN)
    grids.put_many({}, "2026-11-27T12:00:02.000+00:00")  # nothing written: the beacon stays
    assert grids.get_meta(TILES_WRITTEN) == moved


def test_a_tile_written_twice_in_one_run_has_a_new_stamp(grids: GridRepository) -> None:
    """A run writes a tile in a chunk and again in a later chunk (a report removed meanwhile)
    with the same computed_at: readers key their caches by the stamp, so it must change."""
    key = grid_key("d", "all|all", 12, 1, 2)
    grids.put_many({key: b"first"}, "2026-11-27T12:00:00.000+00:00")
    before = grids.get_many([key])[key][1]
    grids.put_many({key: b"again"}, "2026-11-27T12:00:00.000+00:00")
    after = grids.get_many([key])[key][1]
    assert before != after and stamp_time(before) == stamp_time(after)


def test_marks_merge_per_partition_with_their_ticks_and_reports(grids: GridRepository) -> None:
    p1, p2 = point(), point()
    grids.mark_dirty_many({"14/1/1": {"all"}}, acked={"14/1/1": [10]}, points={"14/1/1": [p1]})
    grids.mark_dirty_many(
        {"14/1/1": {"theft"}, "14/2/2": {"all"}, "14/3/3": set()},  # no layers: no mark
        acked={"14/1/1": [11]},
        points={"14/1/1": [p2], "14/2/2": [p1]},
    )
    first, second = grids.dirty_markers()
    assert (first.partition, second.partition) == ("14/1/1", "14/2/2")
    assert first.layers == {"all", "theft"} and sorted(first.acked) == [10, 11]
    assert len(first.keys) == 2 and {p.id for p in first.points or ()} == {p1.id, p2.id}
    assert second.points == (p1,) and second.acked == ()
    assert [m.partition for m in grids.dirty_markers(after="14/1/1")] == ["14/2/2"]
    assert [m.partition for m in grids.dirty_markers(limit=1)] == ["14/1/1"]
    assert len(grids.dirty_keys(5)) == 3 and grids.has_dirty()


def test_one_mark_without_its_reports_makes_the_partition_read_afresh(
    grids: GridRepository,
) -> None:
    grids.mark_dirty_many({"14/1/1": {"all"}}, points={"14/1/1": [point()]})
    grids.mark_dirty("14/1/1", ["all"])  # a window roll: no reports carried
    (marker,) = grids.dirty_markers()
    assert marker.points is None and len(marker.keys) == 2


def test_clearing_deletes_the_marks_read_and_keeps_those_made_since(
    grids: GridRepository,
) -> None:
    grids.mark_dirty("14/1/1", ["all"])
    read = grids.dirty_markers()
    grids.mark_dirty("14/1/1", ["theft"])  # while the run works
    grids.clear_markers(read)
    (left,) = grids.dirty_markers()
    assert left.layers == {"theft"}
    grids.clear_markers([left])
    assert not grids.has_dirty() and grids.dirty_markers() == []


def test_background_marks_group_by_kind_and_layer_and_clear_as_read(
    grids: GridRepository,
) -> None:
    grids.mark_background({"all": {"14/1/1"}, "theft": {"14/2/2"}, "other": set()}, OVERVIEW)
    grids.mark_background({"all": {"14/3/3"}}, OVERVIEW)
    grids.mark_background({"theft": {"14/4/4"}}, FINE)
    found = {(m.kind, m.layer): m for m in grids.background_markers()}
    assert set(found) == {(FINE, "theft"), (OVERVIEW, "all"), (OVERVIEW, "theft")}
    assert found[OVERVIEW, "all"].partitions == {"14/1/1", "14/3/3"}
    assert len(grids.background_markers(limit=1)) == 1
    grids.mark_background({"all": {"14/5/5"}}, OVERVIEW)  # while the pass works
    grids.clear_background(found[OVERVIEW, "all"])
    again = {(m.kind, m.layer): m for m in grids.background_markers()}
    assert again[OVERVIEW, "all"].partitions == {"14/5/5"}


def test_a_lease_is_held_by_one_owner_renewed_by_it_and_lost_when_it_expires(
    grids: GridRepository,
) -> None:
    assert grids.acquire("lease", 60, "a")
    assert not grids.acquire("lease", 60, "b")
    assert not grids.acquire("lease", 60, "a")  # not without `renew`
    assert grids.acquire("lease", 60, "a", renew=True)
    grids.release("lease", owner="b")  # not b's: stays
    assert not grids.acquire("lease", 60, "b")
    grids.release("lease", owner="a")
    assert grids.acquire("lease", -1, "b")  # already expired: anyone may take it
    assert grids.acquire("lease", 60, "c")
    grids.release("lease")
    assert grids.acquire("lease", 60, "d")


def test_meta_items_read_what_was_put(grids: GridRepository) -> None:
    assert grids.get_meta("rolled-at") is None
    grids.put_meta("rolled-at", "2026-11-27T12")
    assert grids.get_meta("rolled-at") == "2026-11-27T12"
