"""Storing reports and rolling windows (workers.ingest): each id stored and counted once,
in-process against mock_aws."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from shared.geo import gridcodec
from shared.geo.tiles import lonlat_to_world
from shared.model.report import Report, report_id
from shared.store.keys import grid_key
from shared.store.points import StoredPoint
from shared.store.reports import ReportRepository
from tests.unit.workers.support import NOW, World
from workers import ingest, recompute


def test_redelivery_stores_and_counts_once(world: World) -> None:
    rid = str(uuid.uuid4())
    for _ in range(3):
        world.add(-20.0, 30.0, rid=rid)
    world.recompute()
    assert world.reports.ids().count(rid) == 1
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([30.0]), np.array([-20.0]))
    key = grid_key("c", "all|all", zc, int(mx[0] * (1 << zc)), int(my[0] * (1 << zc)))
    assert gridcodec.decode(world.grids.get_many([key])[key][0]).sum() == 1
    assert world.recompute().markers == 0  # nothing left dirty: no repeated work


def test_rolling_window_drops_old_reports(world: World) -> None:
    world.add(0.5, 0.5, occurred_at=NOW - timedelta(days=6, hours=23))
    world.recompute()
    ingest.roll_windows(world.reports, world.grids, NOW)  # day-granular: may mark early, harmless
    later = NOW + timedelta(days=1)
    marked = ingest.roll_windows(world.reports, world.grids, later)
    assert marked >= 1
    recompute.recompute(world.grids, world.recomputer, "t", 60, later, later.isoformat())
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([0.5]), np.array([0.5]))
    xy = (int(mx[0] * (1 << zc)), int(my[0] * (1 << zc)))
    assert world.reader.tiles("all|7d", zc, [xy])[xy].values is None
    assert world.reader.tiles("all|30d", zc, [xy])[xy].values is not None


def test_points_read_packed_and_items_stored_without_them_still_count(world: World) -> None:
    when = datetime(2026, 11, 30, 21, 15, 30, 123456, tzinfo=UTC)
    new = Report(str(uuid.uuid4()), 51.5, -0.1, "theft", "", when, NOW)
    world.reports.store_many([(new, "14/1/1")])
    expected = StoredPoint(-0.1, 51.5, "theft", when, new.id)
    assert world.reports.points("14/1/1") == [expected]
    # An item written before reports carried `pt`: the partition is read attribute by attribute.
    old = str(uuid.uuid4())
    item = {k: v for k, v in ReportRepository._item(new, "14/1/1").items() if k != "pt"}
    item["sk"] = {"S": old}
    world.reports._ddb.put_item(TableName=world.reports._table, Item=item)
    got = sorted(world.reports.points("14/1/1"), key=lambda p: p.id)
    assert got == sorted(
        [expected, StoredPoint(-0.1, 51.5, "theft", when, old)], key=lambda p: p.id
    )


def test_store_many_writes_each_id_once_and_completes_a_half_stored_report(world: World) -> None:
    def report(rid: str, lat: float) -> Report:
        return Report(rid, lat, 7.0, "theft", "", NOW, NOW)

    zp = world.pyramid.partition_zoom
    # Ids from an Idempotency-Key (uuid5) are guarded; random ones (uuid4) need no guard.
    a, c = (report_id(uuid.uuid4().hex) for _ in range(2))
    b = str(uuid.uuid4())

    def place(lat: float) -> str:
        return "{}/{}/{}".format(zp, *world.pyramid.partition_of(7.0, lat))

    batch = [report(a, 1.0), report(a, 1.0), report(b, 1.0)]
    stored = world.reports.store_many([(r, place(r.lat)) for r in batch])
    assert stored[2] and sum(stored[:2]) == 1
    # The same id at another place (a retry with another body) loses to the first.
    assert world.reports.store_many([(report(a, 2.0), place(2.0))]) == [False]
    assert sorted(world.reports.ids()) == sorted([a, b])
    assert len(world.reports.points(place(1.0))) == 2 and world.reports.points(place(2.0)) == []

    # A delivery that died after its guard: the redelivery finishes the report.
    assert world.reports._guard(report(c, 1.0), place(1.0)) is True
    assert len(world.reports.points(place(1.0))) == 2
    assert world.reports.store_many([(report(c, 1.0), place(1.0))]) == [False]
    assert len(world.reports.points(place(1.0))) == 3
    assert place(1.0) in world.reports.partitions_of_day(NOW.date().isoformat())

    # A redelivered random id rewrites the same item: still one report.
    world.reports.store_many([(report(b, 1.0), place(1.0))])
    assert sorted(world.reports.ids()) == sorted([a, b, c])
    assert len(world.reports.points(place(1.0))) == 3
