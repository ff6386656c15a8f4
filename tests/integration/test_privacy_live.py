"""The privacy promise over the real stack, as an attacker sees it: reports posted from several
client addresses (distinct submitters counted), grids and PNG tiles read through the API.

The issue's case: one report in an empty place and two others ~1,060 m away. Before the rule
was a circle of 2 bandwidths, zoom 12 showed one kernel's peak 19 m from the lone report. Now
nothing within 400 m of it shows at zooms 10-16, in any layer a viewer can ask for, and three
reports planted beside someone else's from one address count as one submitter.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from shared.geo.tiles import TILE, lonlat_to_world, world_to_lonlat
from tests.support import own_stack, png_alpha, poll, post_from

pytestmark = pytest.mark.integration

LONE = (40.0, -100.0)
CONTROL = (40.05, -100.0)  # three distinct submitters: must show, so the map is live
PLANTED = (39.95, -100.0)  # a victim and three reports beside it from one address
R_EARTH = 6_378_137.0
API = "/api/safetyheatmap"


def offset(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    b = math.radians(bearing_deg)
    dlat = math.degrees(metres * math.cos(b) / R_EARTH)
    dlon = math.degrees(metres * math.sin(b) / (R_EARTH * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {
        "SAFETYHEATMAP_PRIVACY_DISTINCT_SUBMITTERS": "true",
        "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
        "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
    }
    with own_stack(tmp_path_factory.mktemp("privacy"), env) as s:
        s.start(workers=1)
        yield s


def body(lat: float, lon: float, category: str = "harassment") -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "category": category}


def heatmap(url: str, bbox: tuple[float, ...], zoom: int, **layer: str) -> dict[str, Any]:
    params = {"bbox": ",".join(f"{v:.6f}" for v in bbox), "zoom": zoom, **layer}
    resp = requests.get(f"{url}{API}/heatmap/get", params=params, timeout=10)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def around(lat: float, lon: float, metres: float) -> tuple[float, float, float, float]:
    south, _ = offset(lat, lon, metres, 180)
    north, _ = offset(lat, lon, metres, 0)
    _, west = offset(lat, lon, metres, 270)
    _, east = offset(lat, lon, metres, 90)
    return (west, south, east, north)


def shown_within(grid: dict[str, Any], lat: float, lon: float, metres: float) -> float:
    """The largest value of a cell whose centre lies within `metres` of (lat, lon)."""
    values = np.asarray(grid["values"], dtype=float)
    west, south, east, north = grid["bbox"]
    h, w = values.shape
    mx0, my0 = lonlat_to_world(np.array([west]), np.array([north]))
    mx1, my1 = lonlat_to_world(np.array([east]), np.array([south]))
    cols = mx0[0] + (np.arange(w) + 0.5) / w * (mx1[0] - mx0[0])
    rows = my0[0] + (np.arange(h) + 0.5) / h * (my1[0] - my0[0])
    glon, glat = np.broadcast_arrays(*world_to_lonlat(cols[None, :], rows[:, None]))
    dy = np.radians(glat - lat) * R_EARTH
    dx = np.radians(glon - lon) * R_EARTH * math.cos(math.radians(lat))
    near = dx * dx + dy * dy <= metres * metres
    return float(values[near].max(initial=0.0))


def tile_shown_within(url: str, z: int, lat: float, lon: float, metres: float, **layer: str) -> int:
    """Opaque pixels of the served tiles within `metres` of (lat, lon)."""
    n = 1 << z
    mx, my = lonlat_to_world(np.array([lon]), np.array([lat]))
    x0, y0 = int(mx[0] * n), int(my[0] * n)
    opaque = 0
    for x in (x0 - 1, x0, x0 + 1):
        for y in (y0 - 1, y0, y0 + 1):
            resp = requests.get(
                f"{url}{API}/heatmap/tiles/{z}/{x}/{y}.png", params=layer, timeout=10
            )
            assert resp.status_code == 200
            alpha = png_alpha(resp.content)
            px = (np.arange(TILE) + 0.5) / TILE
            cols, rows = (x + px) / n, (y + px) / n
            glon, glat = np.broadcast_arrays(*world_to_lonlat(cols[None, :], rows[:, None]))
            dy = np.radians(glat - lat) * R_EARTH
            dx = np.radians(glon - lon) * R_EARTH * math.cos(math.radians(lat))
            opaque += int(((alpha > 0) & (dx * dx + dy * dy <= metres * metres)).sum())
    return opaque


def export_shown_within(
    url: str, bbox: tuple[float, ...], z: int, lat: float, lon: float, metres: float, **layer: str
) -> float:
    """The largest density heatmap/export's CSV and GeoJSON give within `metres` of (lat, lon)."""
    params = {"bbox": ",".join(f"{v:.6f}" for v in bbox), "zoom": z, **layer}
    points: list[tuple[float, float, float]] = []
    resp = requests.get(
        f"{url}{API}/heatmap/export", params={**params, "format": "csv"}, timeout=10
    )
    assert resp.status_code == 200
    points += [
        (float(r["lon"]), float(r["lat"]), float(r["density"]))
        for r in csv.DictReader(io.StringIO(resp.text))
    ]
    resp = requests.get(
        f"{url}{API}/heatmap/export", params={**params, "format": "geojson"}, timeout=10
    )
    assert resp.status_code == 200
    for feature in resp.json()["features"]:
        (w, s), _, (e, n) = feature["geometry"]["coordinates"][0][:3]
        points.append(((w + e) / 2, (s + n) / 2, feature["properties"]["density"]))
    shown = 0.0
    for plon, plat, value in points:
        dy = math.radians(plat - lat) * R_EARTH
        dx = math.radians(plon - lon) * R_EARTH * math.cos(math.radians(lat))
        if dx * dx + dy * dy <= metres * metres:
            shown = max(shown, value)
    return shown


def test_no_grid_or_tile_shows_a_lone_report_or_a_planted_cluster(stack: Any) -> None:
    url = stack.url
    ne = offset(*LONE, 1060, 45)
    se = offset(*LONE, 1060, 135)
    posts = [(LONE, "127.0.1.1"), (ne, "127.0.1.2"), (se, "127.0.1.3")]
    posts += [(offset(*CONTROL, 40 * i, 90 * i), f"127.0.2.{i + 1}") for i in range(3)]
    posts += [(PLANTED, "127.0.3.1")]  # the victim
    posts += [(offset(*PLANTED, 30, 120 * i), "127.0.3.9") for i in range(3)]  # one attacker
    for (lat, lon), client in posts:
        assert post_from(url, body(lat, lon), client) == 202

    def control_shows() -> bool:
        for z in (12, 14, 10):
            grid = heatmap(url, around(*CONTROL, 600), z)
            if shown_within(grid, *CONTROL, 200) <= 0:
                return False
        status = requests.get(f"{url}{API}/status", timeout=10).json()
        return bool(status.get("dirty_partitions") == 0)

    poll(control_shows, 60, "the control cluster on the map and nothing left dirty")
    # The background pass (categories, overview zooms) runs within a second of quiet: wait
    # for the category layer of the control cluster too, then look everywhere.
    poll(
        lambda: (
            shown_within(
                heatmap(url, around(*CONTROL, 600), 12, category="harassment"), *CONTROL, 200
            )
            > 0
        ),
        60,
        "the category layer",
    )
    layers = [
        {},
        {"window": "7d"},
        {"window": "30d"},
        {"category": "harassment"},
        {"category": "harassment", "window": "7d"},
    ]
    for layer in layers:
        for z in range(10, 17):
            for place in (LONE, PLANTED):
                grid = heatmap(url, around(*place, 410), z, **layer)
                assert shown_within(grid, *place, 400) == 0, (z, layer, place)
        for z in (10, 12, 14, 16):
            for place in (LONE, PLANTED):
                assert tile_shown_within(url, z, *place, 400, **layer) == 0, (z, layer, place)
        for z in (10, 12, 14, 16):
            for place in (LONE, PLANTED):
                shown = export_shown_within(url, around(*place, 410), z, *place, 400, **layer)
                assert shown == 0, ("export", z, layer, place)
    assert export_shown_within(url, around(*CONTROL, 600), 12, *CONTROL, 200) > 0
