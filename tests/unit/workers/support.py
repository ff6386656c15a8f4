"""What the worker tests share: a world of the real repositories and recomputer in process
against mock_aws, and the builders and measures the tests of several modules use."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from moto import mock_aws

from shared.config.settings import Settings
from shared.geo import gridcodec
from shared.geo.tiles import Pyramid, lonlat_to_world
from shared.model.report import Report
from shared.store import aws
from shared.store.grids import GridRepository, Marker
from shared.store.keys import grid_key
from shared.store.provision import provision
from shared.store.reports import ReportRepository
from web.grids import BlobCache, GridReader
from workers import ingest, recompute
from workers.layers import all_layers
from workers.pyramid import Recomputer
from workers.recompute import RecomputeResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DENSITY = {"PRIVACY_MIN_REPORTS": "1", "PRIVACY_RADIUS_FACTOR": "4"}
"""k = 1 over the kernel's whole reach (4 bandwidths): every cell the density reaches shows,
so tests in such a world measure the density itself; the privacy rule has tests of its own."""


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

    def recompute(self) -> RecomputeResult:
        return recompute.recompute(self.grids, self.recomputer, "test", 60, NOW, NOW.isoformat())

    def region(self, layer: str, z: int, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        return self.reader.region(layer, z, r0, c0, r1, c1)[0]


def make_world(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[World]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield World(Settings.from_env({f"SAFETYHEATMAP_{k}": v for k, v in env.items()}))


def twin_world() -> World:
    """A second world in the same emulator as `world` (same settings), with its own tables."""
    names = {"REPORTS_TABLE": "twin-reports", "GRIDS_TABLE": "twin-grids"}
    env = {f"SAFETYHEATMAP_{k}": v for k, v in (DENSITY | names).items()}
    return World(Settings.from_env(env))


class Clock:
    """The background pass's clock (its cadence), moved by hand."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def deferred(world: World, clock: Clock, budget_s: float = 10.0) -> RecomputeResult:
    return recompute.recompute(
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


def tiles_at(world: World, lons: list[float]) -> list[str]:
    """The compute-zoom count and density tiles of the `all|all` layer at these places."""
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array(lons), np.full(len(lons), 51.5))
    xys = {(int(x * (1 << zc)), int(y * (1 << zc))) for x, y in zip(mx, my, strict=True)}
    return [grid_key(kind, "all|all", zc, *xy) for kind in "cd" for xy in sorted(xys)]


def grid_items(w: World) -> dict[str, bytes]:
    """Every stored tile's bytes, by key."""
    ddb, table = w.grids._ddb, w.grids._table
    items = ddb.scan(TableName=table, ProjectionExpression="pk, g")["Items"]
    return {i["pk"]["S"]: i["g"]["B"] for i in items if "g" in i}


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
