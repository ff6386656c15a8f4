"""heatmap/export through the app with fake tables: the map's densities, as files."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from falcon import testing

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid, tile_bounds
from tests.unit.web.test_app import NOW, FakeGrids, FakeQueue, _store_tile
from web.app import create_app
from web.grids import BlobCache, GridReader

EXPORT = "/api/safetyheatmap/heatmap/export"
GET = "/api/safetyheatmap/heatmap/get"


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Any]:
    settings = Settings(frontend_dir=str(tmp_path), cache_max_age=7)
    grids = FakeGrids()
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    reader = GridReader(BlobCache(grids, ttl=60, size=16), pyramid)  # type: ignore[arg-type]
    app = create_app(settings, FakeQueue(), reader, {}, lambda: NOW)
    _store_tile(grids, "all|all", 2, 1, 1, 5.0)  # the "all" layer only: others show nothing
    w, s, _, _ = tile_bounds(2, 1, 1)
    bbox = f"{w + 1},{s + 1},{w + 9},{s + 9}"
    return {"client": testing.TestClient(app), "grids": grids, "bbox": bbox}


def _get(parts: dict[str, Any], fmt: str, **extra: str) -> testing.Result:
    params = {"bbox": parts["bbox"], "zoom": "2", "format": fmt, **extra}
    return parts["client"].simulate_get(EXPORT, params=params)


def _map(parts: dict[str, Any]) -> dict[str, Any]:
    resp = parts["client"].simulate_get(GET, params={"bbox": parts["bbox"], "zoom": "2"})
    body: dict[str, Any] = resp.json
    return body


def test_geojson_is_the_maps_shown_cells_with_metadata(parts: dict[str, Any]) -> None:
    resp = _get(parts, "geojson")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/geo+json"
    assert resp.headers["Content-Disposition"] == (
        'attachment; filename="safetyheatmap-all-all.geojson"'
    )
    assert resp.headers["Cache-Control"] == "public, max-age=7" and resp.headers["ETag"]
    body = resp.json
    grid = _map(parts)
    shown = np.asarray(grid["values"])
    assert len(body["features"]) == int((shown > 0).sum())
    assert sorted(f["properties"]["density"] for f in body["features"]) == sorted(
        shown[shown > 0].tolist()
    )
    assert body["licence"] == "ODbL-1.0" and body["unit"] == "reports/km2"
    assert body["bandwidth_m"] == grid["bandwidth_m"]
    assert body["computed_at"] == grid["computed_at"] and body["window"] == "all"
    assert body["privacy_min_reports"] == 3


def test_a_hidden_cell_is_in_no_file(parts: dict[str, Any]) -> None:
    resp = _get(parts, "csv", category="theft")  # nothing stored for this layer
    assert resp.status_code == 200
    assert resp.text.splitlines() == ["lon,lat,density"]
    assert _get(parts, "geojson", category="theft").json["features"] == []


def test_csv_rows_and_metadata_headers(parts: dict[str, Any]) -> None:
    resp = _get(parts, "csv", window="30d")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "safetyheatmap-all-30d.csv" in resp.headers["Content-Disposition"]
    assert resp.headers["X-SafetyHeatmap-Licence"] == "ODbL-1.0"
    assert resp.headers["X-SafetyHeatmap-Window"] == "30d"
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["lon", "lat", "density"]
    again = _get(parts, "csv", window="30d")  # a repeated read keeps its headers
    assert again.headers["X-SafetyHeatmap-Licence"] == "ODbL-1.0"
    assert again.content == resp.content


def test_geotiff_opens_with_the_maps_bbox(parts: dict[str, Any]) -> None:
    resp = _get(parts, "geotiff")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/tiff; application=geotiff"
    assert resp.headers["Content-Disposition"].endswith('.tif"')
    grid = _map(parts)
    with tifffile.TiffFile(io.BytesIO(resp.content)) as tif:
        page = tif.pages.first
        geo, values = page.geotiff_tags, page.asarray()
    assert geo is not None and geo["ProjectedCSTypeGeoKey"] == 3857
    r = 6_378_137.0
    x0, y0 = geo["ModelTiepoint"][3:5]
    sx, sy, _ = geo["ModelPixelScale"]
    h, w = values.shape
    west, east = np.degrees(x0 / r), np.degrees((x0 + w * sx) / r)
    north = np.degrees(2 * np.arctan(np.exp(y0 / r)) - np.pi / 2)
    south = np.degrees(2 * np.arctan(np.exp((y0 - h * sy) / r)) - np.pi / 2)
    assert [west, south, east, north] == pytest.approx(grid["bbox"], abs=1e-6)
    np.testing.assert_allclose(values, np.asarray(grid["values"]), rtol=1e-6)
    again = parts["client"].simulate_get(
        EXPORT,
        params={"bbox": parts["bbox"], "zoom": "2", "format": "geotiff"},
        headers={"If-None-Match": resp.headers["ETag"]},
    )
    assert again.status_code == 304 and not again.content
    assert _get(parts, "csv").headers["ETag"] != resp.headers["ETag"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"format": "csv"}, 400, "bbox"),
        ({"bbox": "1,2,3", "format": "csv"}, 400, "bbox"),
        ({"bbox": "-180,-85,180,85", "zoom": "12", "format": "csv"}, 400, "bbox"),
        ({"bbox": "0,0,1,1", "zoom": "x", "format": "csv"}, 400, "zoom"),
        ({"bbox": "0,0,1,1", "window": "2d", "format": "csv"}, 400, "window"),
        ({"bbox": "0,0,1,1"}, 422, "format"),
        ({"bbox": "0,0,1,1", "format": "kml"}, 422, "format"),
    ],
)
def test_bad_queries_name_the_parameter(
    parts: dict[str, Any], params: dict[str, str], status: int, field: str
) -> None:
    resp = parts["client"].simulate_get(EXPORT, params=params)
    assert resp.status_code == status
    assert resp.json["field"] == field
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Content-Disposition" not in resp.headers
