"""The tile pyramid against exact Gaussian sums, in-process against mock_aws."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from moto import mock_aws

from shared.config.settings import Settings
from shared.geo import density, gridcodec
from shared.geo.tiles import (
    TILE,
    Pyramid,
    cell_ground_m,
    lonlat_to_world,
    tile_bounds,
    world_to_lonlat,
)
from shared.model.report import Report, report_id
from shared.store import aws
from shared.store.provision import provision
from shared.store.storage import (
    TILES_WRITTEN,
    GridRepository,
    Marker,
    ReportRepository,
    StoredPoint,
    grid_key,
    partition_key,
)
from web.grids import BlobCache, GridReader
from workers import ingest
from workers.pyramid import Recomputer, StoredTiles, all_layers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
R_EARTH = 6_378_137.0


class World:
    def __init__(self, settings: Settings) -> None:
        provision(settings)
        ddb = aws.client(settings, "dynamodb")
        self.reports = ReportRepository(ddb, settings.reports_table)
        self.grids = GridRepository(ddb, settings.grids_table)
        self.pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
        self.recomputer = Recomputer(self.reports, self.grids, self.pyramid, settings.privacy_rule)
        self.reader = GridReader(BlobCache(self.grids, ttl=0.0, size=64), self.pyramid)

    def add(
        self,
        lat: float,
        lon: float,
        category: str = "harassment",
        occurred_at: datetime = NOW,
        rid: str | None = None,
    ) -> str:
        report = Report(rid or str(uuid.uuid4()), lat, lon, category, "", occurred_at, NOW)
        ingest.store(report, self.reports, self.grids, self.pyramid, NOW)
        return report.id

    def recompute(self) -> ingest.RecomputeResult:
        return ingest.recompute(self.grids, self.recomputer, "test", 60, NOW, NOW.isoformat())

    def region(self, layer: str, z: int, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        return self.reader.region(layer, z, r0, c0, r1, c1)[0]


def make_world(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[World]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield World(Settings.from_env({f"SAFETYHEATMAP_{k}": v for k, v in env.items()}))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # k = 1 over the kernel's whole reach (4 bandwidths): every cell the density reaches shows,
    # so these tests measure the density itself; the privacy rule has tests of its own.
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="1", PRIVACY_RADIUS_FACTOR="4")


@pytest.fixture
def private_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="3")


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


def test_rolling_window_drops_old_reports(world: World) -> None:
    world.add(0.5, 0.5, occurred_at=NOW - timedelta(days=6, hours=23))
    world.recompute()
    ingest.roll_windows(world.reports, world.grids, NOW)  # day-granular: may mark early, harmless
    later = NOW + timedelta(days=1)
    marked = ingest.roll_windows(world.reports, world.grids, later)
    assert marked >= 1
    ingest.recompute(world.grids, world.recomputer, "t", 60, later, later.isoformat())
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([0.5]), np.array([0.5]))
    xy = (int(mx[0] * (1 << zc)), int(my[0] * (1 << zc)))
    assert world.reader.tiles("all|7d", zc, [xy])[xy].values is None
    assert world.reader.tiles("all|30d", zc, [xy])[xy].values is not None


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def deferred(world: World, clock: Clock, budget_s: float = 10.0) -> ingest.RecomputeResult:
    return ingest.recompute(
        world.grids,
        world.recomputer,
        "test",
        60,
        NOW,
        NOW.isoformat(),
        budget_s=budget_s,
        overview_zoom=8,
        background_every_s=60.0,
        clock=clock,
    )


def total(world: World, z: int, lat: float, lon: float, layer: str = "all|all") -> int:
    mx, my = lonlat_to_world(np.array([lon]), np.array([lat]))
    key = grid_key("c", layer, z, int(mx[0] * (1 << z)), int(my[0] * (1 << z)))
    found = world.grids.get_many([key])
    return int(gridcodec.decode(found[key][0]).sum()) if key in found else 0


def full_run_writes(world: World) -> int:
    """Tiles a full recompute of every partition would still change: 0 when all is current."""
    markers = [Marker(p, frozenset(all_layers())) for p in world.reports.partitions()]
    return world.recomputer.run(markers, NOW, NOW.isoformat())


def test_background_work_follows_its_cadence_and_category_layers_catch_up_when_quiet(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pass ends on its slice of time: on a busy box (the suite runs two files at once) one
    # second may not finish it. Slicing has its own test; here every due pass completes.
    monkeypatch.setattr(ingest, "BACKGROUND_SHARE", 1e6)
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
    monkeypatch.setattr(ingest, "BACKGROUND_SHARE", 0.0)
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
    monkeypatch.setattr(ingest, "BACKGROUND_SHARE", 0.0)
    monkeypatch.setattr(ingest, "BACKGROUND_PIECE", 1)
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


def three_chunks(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report in each of three partitions, and chunks of one partition."""
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
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
    result = ingest.recompute(world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat())
    assert served[:4] == [*partitions, partitions[0]]  # round, then round again
    assert result.markers == len(served) and not world.grids.dirty_markers()
    assert [m.partition for m in world.grids.dirty_markers(after=partitions[0])] == []
    for partition in partitions:
        world.grids.mark_dirty(partition, ["all|all"])
    after = [[m.partition for m in world.grids.dirty_markers(after=p)] for p in partitions]
    assert after == [partitions[1:], partitions[2:], []]


def test_a_run_writes_each_background_mark_once_however_often_it_goes_round(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
    monkeypatch.setattr(ingest, "BACKGROUND_SHARE", 0.0)  # the pass itself stays for later
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
    result = ingest.recompute(
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


def test_a_run_reports_whose_reports_it_made_visible(world: World) -> None:
    world.add(30.0, 30.0)
    world.add(30.001, 30.0)
    seen: list[dict[int, int]] = []
    ingest.recompute(
        world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat(), on_visible=seen.append
    )
    assert seen == [{int(NOW.timestamp() * 10): 2}]
    seen.clear()
    ingest.recompute(
        world.grids, world.recomputer, "t", 60, NOW, NOW.isoformat(), on_visible=seen.append
    )
    assert seen == []  # nothing was dirty: nobody's lag ends twice


def test_one_trigger_waits_for_a_held_lease_and_a_run_frees_its_place(world: World) -> None:
    world.add(10.0, 10.0)
    assert world.grids.acquire(ingest.LEASE, 60, "running")
    assert ingest.wait_for_lease(world.grids, "a", 60)  # the first trigger waits
    assert not ingest.wait_for_lease(world.grids, "b", 60)  # the next ones go
    assert ingest.wait_for_lease(world.grids, "a", 60)  # the waiter retries, still waiting
    args = (world.grids, world.recomputer, "a", 60, NOW, NOW.isoformat())
    assert not ingest.recompute(*args, waiter=True).ran  # the lease is still held
    world.grids.release(ingest.LEASE, "running")
    result = ingest.recompute(*args, waiter=True)
    assert result.ran and result.markers == 1
    # The waiter's run has started: a trigger that comes now waits for it in turn.
    assert world.grids.acquire(ingest.LEASE, 60, "a")
    assert ingest.wait_for_lease(world.grids, "c", 60)
    assert not ingest.wait_for_lease(world.grids, "a", 60)


def count_queries(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The partitions the recomputer reads from now on, in order (repeats kept)."""
    queried: list[str] = []
    points_many = world.reports.points_many

    def counted(partitions: list[str]) -> Any:
        queried.extend(partitions)
        return points_many(partitions)

    monkeypatch.setattr(world.reports, "points_many", counted)
    return queried


def after_first_chunk(
    world: World, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]
) -> Callable[..., int]:
    """Make `meanwhile` happen once the run's first chunk is done; returns the unpatched run."""
    run = world.recomputer.run
    chunks = iter(range(1_000))

    def under_load(markers: list[Marker], *args: Any, **kwargs: Any) -> int:
        written = run(markers, *args, **kwargs)
        if next(chunks) == 0:
            meanwhile()
        return written

    monkeypatch.setattr(world.recomputer, "run", under_load)
    return run


def test_a_run_reads_each_partition_once_and_still_shows_what_it_gained_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
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
    tiles = _tiles(world, lons)
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
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
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
    tiles = _tiles(world, lons)
    stored = {k: v[0] for k, v in world.grids.get_many(tiles).items()}
    assert sum(gridcodec.decode(stored[k]).sum() for k in tiles if k.startswith("c#")) == 3


def _tiles(world: World, lons: list[float]) -> list[str]:
    """The compute-zoom count and density tiles of the `all|all` layer at these places."""
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array(lons), np.full(len(lons), 51.5))
    xys = {(int(x * (1 << zc)), int(y * (1 << zc))) for x, y in zip(mx, my, strict=True)}
    return [grid_key(kind, "all|all", zc, *xy) for kind in "cd" for xy in sorted(xys)]


def test_a_due_background_pass_goes_between_the_chunks_of_a_busy_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not all after the last chunk: the run that follows and its reports waited for it."""
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
    monkeypatch.setattr(ingest, "BACKGROUND_SHARE", 1e6)
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
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
    # A second world in the same emulator, same settings but its tables, whose chunks read
    # every tile afresh (as before a run kept the tiles it read and wrote).
    names = {"REPORTS_TABLE": "twin-reports", "GRIDS_TABLE": "twin-grids"}
    same = {"PRIVACY_MIN_REPORTS": "1", "PRIVACY_RADIUS_FACTOR": "4"}  # as `world`
    env = {f"SAFETYHEATMAP_{k}": v for k, v in (same | names).items()}
    twin = World(Settings.from_env(env))

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
    monkeypatch.setattr(ingest, "StoredTiles", Forgetful)
    assert twin.recompute().markers == 3
    mine, theirs = _grid_items(world), _grid_items(twin)
    assert len(mine) > 100 and mine == theirs


def _grid_items(w: World) -> dict[str, bytes]:
    ddb, table = w.grids._ddb, w.grids._table
    items = ddb.scan(TableName=table, ProjectionExpression="pk, g")["Items"]
    return {i["pk"]["S"]: i["g"]["B"] for i in items if "g" in i}


def test_stored_tiles_forget_everything_past_their_limit() -> None:
    tiles = StoredTiles(limit_bytes=10)
    tiles.put("a", b"12345")
    tiles.put("b", None)
    assert tiles.get("a") == (True, b"12345") and tiles.get("b") == (True, None)
    tiles.put("c", b"123456")
    assert tiles.get("a") == (False, None) and tiles.get("c") == (False, None)


def test_a_run_of_several_chunks_records_its_time_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "MARKERS_PER_CHUNK", 1)
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


def as_if(want: dict[str, bytes], got: dict[str, bytes], before: dict[str, bytes]) -> bool:
    """The same tiles: counts exact, densities within the codec's rounding. A density tile is
    quantized to 4,095 levels of its peak, and the cells a run does not recompute are decoded
    and quantized again: they keep the rounding of the peak they were written under (the
    flood's): within half a level of the tile's peak before and half a level of its peak now
    of the exact value, where a tile written once is within half a level of its peak."""
    if want.keys() != got.keys():
        return False
    for key, blob in want.items():
        if key.startswith("c#"):
            if got[key] != blob:
                return False
            continue
        a, b = gridcodec.decode(got[key]), gridcodec.decode(blob)
        old = gridcodec.decode(before[key]) if key in before else a
        now = max(float(np.abs(a).max()), float(np.abs(b).max()))
        bound = float(np.abs(old).max()) / 8190 + now / 4095
        if not np.allclose(a, b, rtol=0, atol=bound * 1.001 + 1e-15):
            return False
    return True


def test_a_cell_does_not_depend_on_which_partitions_were_recomputed_with_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """London's and Paris's steps write some of the same coarse cells. Each cell used to be
    divided by the area of a cell at its step's centre, so its value depended on which step
    wrote it last: 12 % at zoom 0 after London was recomputed alone."""
    names = {"REPORTS_TABLE": "twin-reports", "GRIDS_TABLE": "twin-grids"}
    same = {"PRIVACY_MIN_REPORTS": "1", "PRIVACY_RADIUS_FACTOR": "4"}  # as `world`
    env = {f"SAFETYHEATMAP_{k}": v for k, v in (same | names).items()}
    twin = World(Settings.from_env(env))
    for w in (world, twin):
        w.add(51.5003, -0.1202)
        w.add(48.85, 2.35)
    world.recompute()
    before = _grid_items(world)
    for w in (world, twin):
        w.add(51.5, -0.12)  # London alone, in the world; both at once, in the twin
        assert w.recompute().markers
    assert as_if(_grid_items(twin), _grid_items(world), before)


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
    assert world.grids.acquire(ingest.LEASE, 60, "another run")
