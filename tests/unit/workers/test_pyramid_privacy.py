"""The privacy rule on every served surface: reports stored and recomputed by the real code
(moto in process), grids read back as the web reads them (``GridReader``: coarse zooms, the
compute zoom and the interpolated finer ones; heatmap/export's files show exactly those
cells), and every shown cell held against the rule computed afresh from the reports' exact
positions and pseudonyms:

* a shown cell of a slice has at least k distinct submitters of that slice within
  ``PRIVACY_RADIUS_FACTOR`` effective bandwidths of its centre, on the ground;
* wherever two nested slices both show a value, the reports in one and not the other either
  lie farther than that from the cell or come from at least k distinct submitters; and so does
  every class of reports that the shown slices' sums and differences can isolate.

The geometries are the issue's (a lone report with 0 to k-1 others at 0.5 to 6 bandwidths),
clusters, and reports spread over windows, categories and repeated pseudonyms.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from shared.config.categories import ALL
from shared.config.settings import Settings
from shared.geo import export
from shared.geo.tiles import TILE, WINDOWS, Pyramid, layer_key, lonlat_to_world, world_to_lonlat
from shared.model.report import Report
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.provision import provision
from shared.store.reports import ReportRepository
from web.grids import BlobCache, GridReader
from workers import ingest, recompute
from workers.pyramid import Recomputer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LAT0, LON0 = 40.0, -100.0
NORTH = 56.0
"""A latitude where the compute zoom's bandwidth is over 8 cells, so its masks are decided on
2 x 2 blocks of cells (``workers.masks``)."""
R_EARTH = 6_378_137.0
CATS = ("harassment", "poor_lighting", "theft")
AGES = (timedelta(days=1), timedelta(days=12), timedelta(days=100), timedelta(days=500))


class Stack:
    def __init__(self) -> None:
        self.settings = Settings.from_env({})
        provision(self.settings)
        ddb = aws.client(self.settings, "dynamodb")
        self.reports = ReportRepository(ddb, self.settings.reports_table)
        self.grids = GridRepository(ddb, self.settings.grids_table)
        self.pyramid = Pyramid(self.settings.bandwidth_m, self.settings.max_zoom)
        rule = self.settings.privacy_rule
        self.recomputer = Recomputer(self.reports, self.grids, self.pyramid, rule)
        self.reader = GridReader(BlobCache(self.grids, ttl=0.0, size=256), self.pyramid)

    def store(self, batch: list[Report]) -> None:
        ingest.store_many(batch, self.reports, self.grids, self.pyramid, NOW, distinct=True)
        while recompute.recompute(
            self.grids, self.recomputer, "test", 60, NOW, NOW.isoformat()
        ).more:
            pass

    def wipe(self) -> None:
        for table in (self.settings.reports_table, self.settings.grids_table):
            ddb = self.grids._ddb
            for item in ddb.scan(TableName=table, ProjectionExpression="pk, sk")["Items"]:
                ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(key, "testing")
        with mock_aws():
            yield Stack()


def offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / R_EARTH
    dlon = metres * math.sin(bearing) / (R_EARTH * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def report(lat: float, lon: float, cat: str, age: timedelta, who: int) -> Report:
    return Report(str(uuid.uuid4()), lat, lon, cat, "", NOW - age, NOW, submitter=f"{who:08x}" * 4)


def exported(values: np.ndarray, z: int, r0: int, c0: int) -> np.ndarray:
    """The cells heatmap/export's CSV shows for this region (the export surface)."""
    n = TILE << z
    body = export.csv_bytes(export.Grid(values, z, r0, c0, n, {})).decode()
    out = np.zeros(values.shape, bool)
    for row in csv.DictReader(io.StringIO(body)):
        mx, my = lonlat_to_world(np.array([float(row["lon"])]), np.array([float(row["lat"])]))
        out[math.floor(my[0] * n) - r0, math.floor(mx[0] * n) - c0] = True
    return out


class Checker:
    """The rule computed from scratch: exact positions, distinct pseudonyms."""

    def __init__(self, stack: Stack, batch: list[Report]) -> None:
        self.stack = stack
        self.lat0, self.lon0 = batch[0].lat, batch[0].lon
        self.k = stack.settings.privacy_min_reports
        self.factor = stack.settings.privacy_radius_factor
        self.lat = np.array([r.lat for r in batch])
        self.lon = np.array([r.lon for r in batch])
        self.who = np.array([r.submitter for r in batch])
        self.cat = np.array([r.category for r in batch])
        self.age = np.array([(NOW - r.occurred_at).total_seconds() for r in batch])

    def members(self, layer: str) -> np.ndarray:
        category, window = layer.split("|")
        span = WINDOWS[window]
        inside = np.ones(self.cat.size, bool) if span is None else self.age <= span.total_seconds()
        return inside if category == ALL else inside & (self.cat == category)

    def distinct(self, mask: np.ndarray) -> int:
        return len(set(self.who[mask]))

    def check(self, z: int, layers: list[str], half_m: float) -> int:
        """Every shown cell of every layer at zoom z around the reports; returns how many."""
        pyr = self.stack.pyramid
        zc = pyr.compute_zoom
        radius = self.factor * pyr.bandwidth_used_m(min(z, zc), self.lat0)
        n = TILE << z
        mx, my = lonlat_to_world(np.array([self.lon0]), np.array([self.lat0]))
        cell_m = 40_075_016.686 * math.cos(math.radians(self.lat0)) / n
        half = max(2, int(half_m / cell_m))
        r0, c0 = int(my[0] * n) - half, int(mx[0] * n) - half
        step = max(1, (2 * half) // 120)  # at most ~120 x 120 cells a layer
        shown = {}
        for layer in layers:
            values = self.stack.reader.region(layer, z, r0, c0, r0 + 2 * half, c0 + 2 * half)[0]
            assert (exported(values, z, r0, c0) == (values > 0)).all(), (z, layer)
            shown[layer] = values[::step, ::step] > 0
        rows = (np.arange(r0, r0 + 2 * half)[::step] + 0.5) / n
        cols = (np.arange(c0, c0 + 2 * half)[::step] + 0.5) / n
        glon, glat = np.broadcast_arrays(*world_to_lonlat(cols[None, :], rows[:, None]))
        count = 0
        for i, j in zip(*np.nonzero(np.any(list(shown.values()), axis=0)), strict=True):
            near = self.near(float(glat[i, j]), float(glon[i, j]), radius)
            here = [layer for layer in layers if shown[layer][i, j]]
            for layer in here:
                assert self.distinct(self.members(layer) & near) >= self.k, (z, layer)
                count += 1
            self.classes(here, near, z)
        return count

    def near(self, lat: float, lon: float, radius: float) -> np.ndarray:
        dy = np.radians(self.lat - lat) * R_EARTH
        dx = np.radians(self.lon - lon) * R_EARTH * math.cos(math.radians(lat))
        return np.asarray(dx * dx + dy * dy <= radius * radius)

    def classes(self, shown: list[str], near: np.ndarray, z: int) -> None:
        """Group reports by the shown slices that hold them: every group, and so every sum
        or difference of shown slices, is empty near the cell or k distinct submitters."""
        if not shown:
            return
        signature = np.array(
            [
                "".join("1" if self.members(layer)[i] else "0" for layer in shown)
                for i in range(self.cat.size)
            ]
        )
        for sig in set(signature):
            if "1" not in sig:
                continue
            group = (signature == sig) & near
            assert not group.any() or self.distinct(group) >= self.k, (z, shown, sig)


def layers() -> list[str]:
    return [layer_key(c, w) for c in (ALL, *CATS) for w in WINDOWS]


def run(stack: Stack, batch: list[Report]) -> int:
    stack.wipe()
    stack.store(batch)
    checker = Checker(stack, batch)
    zc = stack.pyramid.compute_zoom
    bw = stack.settings.bandwidth_m
    shown = 0
    for z, half in ((zc - 4, 40 * bw), (zc - 2, 15 * bw), (zc, 10 * bw), (zc + 1, 4 * bw)):
        shown += checker.check(z, layers(), half)
    shown += checker.check(zc + 4, [layer_key(ALL, "all")], 2 * bw)
    return shown


lone = st.tuples(
    st.integers(0, 2),  # others besides the lone report (k - 1 at most)
    st.lists(st.floats(0.5, 6.0), min_size=2, max_size=2),  # their distances, in bandwidths
    st.lists(st.floats(0, 2 * math.pi), min_size=2, max_size=2),
    st.integers(0, 5),  # a cluster of this many reports 8 bandwidths away
    st.lists(st.sampled_from(CATS), min_size=10, max_size=10),
    st.lists(st.sampled_from(AGES), min_size=10, max_size=10),
    st.lists(st.integers(0, 4), min_size=10, max_size=10),  # pseudonyms: some repeat
)


@settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lone, st.sampled_from([LAT0, NORTH]))
def test_no_served_cell_fails_the_rule(stack: Stack, case: tuple, lat0: float) -> None:
    others, dists, bearings, cluster, cats, ages, who = case
    bw = stack.settings.bandwidth_m
    batch = [report(lat0, LON0, cats[0], ages[0], 100)]
    for i in range(others):
        lat, lon = offset(lat0, LON0, dists[i] * bw, bearings[i])
        batch.append(report(lat, lon, cats[1 + i], ages[1 + i], who[1 + i]))
    rng = np.random.default_rng(cluster)
    for i in range(cluster):
        lat, lon = offset(lat0, LON0, 8 * bw + rng.normal(0, 0.3 * bw), 1.0)
        batch.append(report(lat, lon, cats[3 + i], ages[3 + i], who[3 + i]))
    run(stack, batch)


def test_the_issue_case_shows_nothing_and_a_cluster_of_distinct_submitters_shows(
    stack: Stack,
) -> None:
    lone_report = report(LAT0, LON0, "harassment", AGES[0], 1)
    ne = offset(LAT0, LON0, 1060, math.radians(45))
    se = offset(LAT0, LON0, 1060, math.radians(135))
    batch = [
        lone_report,
        report(*ne, "harassment", AGES[0], 2),
        report(*se, "harassment", AGES[0], 3),
    ]
    assert run(stack, batch) == 0
    # Five reports from one pseudonym on one spot count once: nothing shows.
    assert run(stack, [report(LAT0, LON0, "theft", AGES[0], 7) for _ in range(5)]) == 0
    # Mixed categories and ages from distinct submitters: something shows, and all holds.
    batch = [
        report(*offset(LAT0, LON0, 30 * i, i), CATS[i % 3], AGES[i % 2], 10 + i) for i in range(12)
    ]
    assert run(stack, batch) > 0
