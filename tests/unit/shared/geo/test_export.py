"""The export writers: units, georeferencing and metadata of each format."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest
import tifffile

from shared.geo import export
from shared.geo.density import density
from shared.geo.tiles import TILE, cell_ground_m, lonlat_to_world, world_to_lonlat

Z, LAT, LON = 14, 51.5, -0.12
META = {
    "bandwidth_m": 200.0,
    "privacy_min_reports": 3,
    "category": "all",
    "window": "30d",
    "computed_at": "2026-11-27T11:59:00+00:00",
    "licence": "ODbL-1.0",
}
R_EARTH = 6_378_137.0


def synthetic(reports: int = 50) -> export.Grid:
    """``reports`` stacked reports near (LAT, LON), as the worker computes them: 64 x 64 cells."""
    n = TILE << Z
    mx, my = lonlat_to_world(np.array([LON]), np.array([LAT]))
    c0, r0 = int(mx[0] * n) - 32, int(my[0] * n) - 32
    u = np.full(reports, mx[0] * n - c0 - 0.5)
    v = np.full(reports, my[0] * n - r0 - 0.5)
    area_km2 = (cell_ground_m(Z, LAT) / 1000) ** 2
    values = density(u, v, (64, 64), 4.0, area_km2)
    return export.Grid(values, Z, r0, c0, n, dict(META))


def ground_area_km2(ring: list[list[float]]) -> float:
    (w, s), (e, _), (_, n) = ring[0], ring[1], ring[2]
    lat = math.radians((s + n) / 2)
    return math.radians(e - w) * R_EARTH * math.cos(lat) * math.radians(n - s) * R_EARTH / 1e6


def test_geojson_densities_are_reports_per_km2_and_integrate_to_the_reports() -> None:
    grid = synthetic(50)
    body = json.loads(export.geojson(grid))
    assert body["type"] == "FeatureCollection"
    total = sum(
        f["properties"]["density"] * ground_area_km2(f["geometry"]["coordinates"][0])
        for f in body["features"]
    )
    assert total == pytest.approx(50, rel=0.01)
    assert max(f["properties"]["density"] for f in body["features"]) == pytest.approx(
        grid.values.max()
    )


def test_geojson_carries_the_metadata_and_only_shown_cells() -> None:
    values = np.zeros((3, 4))
    values[1, 2] = 7.5
    grid = export.Grid(values, Z, 100, 200, TILE << Z, dict(META))
    body = json.loads(export.geojson(grid))
    for key, value in META.items():
        assert body[key] == value
    assert body["unit"] == "reports/km2" and body["zoom"] == Z
    (feature,) = body["features"]
    ring = feature["geometry"]["coordinates"][0]
    n = TILE << Z
    w, north = world_to_lonlat(202 / n, 101 / n)
    e, south = world_to_lonlat(203 / n, 102 / n)
    assert ring[0] == pytest.approx([w, south], abs=1e-7)
    assert ring[2] == pytest.approx([e, north], abs=1e-7)
    assert ring[0] == ring[-1]


def test_csv_rows_are_cell_centres_with_the_density() -> None:
    grid = synthetic(50)
    rows = list(csv.reader(io.StringIO(export.csv_bytes(grid).decode())))
    assert rows[0] == ["lon", "lat", "density"]
    area = sum(float(r[2]) * (cell_ground_m(Z, float(r[1])) / 1000) ** 2 for r in rows[1:])
    assert area == pytest.approx(50, rel=0.01)
    assert len(rows) - 1 == int((grid.values > 0).sum())
    headers = export.csv_headers(grid)
    assert headers["X-SafetyHeatmap-Licence"] == "ODbL-1.0"
    assert headers["X-SafetyHeatmap-Privacy-Min-Reports"] == "3"
    assert headers["X-SafetyHeatmap-Unit"] == "reports/km2"


def test_geotiff_georeferencing_reads_back_as_the_cells_bbox() -> None:
    grid = synthetic(50)
    with tifffile.TiffFile(io.BytesIO(export.geotiff(grid))) as tif:
        page = tif.pages.first
        geo = page.geotiff_tags
        values = page.asarray()
        gdal = page.tags[42112].value
        description = json.loads(page.description)
    assert geo is not None and geo["ProjectedCSTypeGeoKey"] == 3857
    sx, sy, _ = geo["ModelPixelScale"]
    x0, y0 = geo["ModelTiepoint"][3:5]
    # the transform's corners, back in degrees, are the cells' corners
    n = grid.cells_per_side
    w, north = world_to_lonlat(grid.c0 / n, grid.r0 / n)
    e, south = world_to_lonlat((grid.c0 + 64) / n, (grid.r0 + 64) / n)
    half = math.pi * R_EARTH
    lon_w = math.degrees(x0 / R_EARTH)
    lon_e = math.degrees((x0 + 64 * sx) / R_EARTH)
    lat_n = math.degrees(2 * math.atan(math.exp(y0 / R_EARTH)) - math.pi / 2)
    lat_s = math.degrees(2 * math.atan(math.exp((y0 - 64 * sy) / R_EARTH)) - math.pi / 2)
    assert (lon_w, lat_s, lon_e, lat_n) == pytest.approx((w, south, e, north), abs=1e-9)
    assert sx == pytest.approx(2 * half / n)
    np.testing.assert_allclose(values, grid.values, rtol=1e-6)
    items = dict(re.findall(r'<Item name="(\w+)">([^<]*)</Item>', gdal))
    assert items["licence"] == "ODbL-1.0" and items["unit"] == "reports/km2"
    assert items["computed_at"] == META["computed_at"]
    assert description["bandwidth_m"] == 200.0 and description["window"] == "30d"
