"""Heatmap reads: a grid for a bounding box, and PNG tiles. Both only read stored grids."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable

import falcon
import numpy as np

from shared.geo import render
from shared.geo.tiles import (
    TILE,
    Layer,
    Pyramid,
    layer_key,
    lonlat_to_world,
    tile_center_lat,
    world_to_lonlat,
)
from web.errors import BadRequest
from web.grids import Answer, BodyCache, GridReader, RecentAnswers
from web.params import BBOX, CATEGORY, DAYS_PARAM, LIGHT, WINDOW, ZOOM
from web.replay import ANSWERED

RENDER_VERSION = "1"
"""Bump when rendering changes, so clients' cached answers are not taken as current."""


def _etag(*parts: object) -> str:
    digest = hashlib.blake2b(repr((RENDER_VERSION, *parts)).encode(), digest_size=12)
    return '"' + digest.hexdigest() + '"'


def _send_cached(
    req: falcon.Request,
    resp: falcon.Response,
    etag: str,
    bodies: BodyCache,
    render_body: Callable[[], bytes],
    content_type: str,
    recent: RecentAnswers,
    age: float,
) -> None:
    """304 when the client holds this version; else the cached body; else render it once.

    The ETag names the request and the computed_at of every stored tile behind the answer, so
    it changes exactly when the answer can change, and is known before anything is rendered.
    """
    if _not_modified(req, resp, etag):
        _remember(req, recent, Answer(etag, None, content_type), age)
        return
    body = bodies.get(etag)
    if body is None:
        body = render_body()
        bodies.put(etag, body)
    _remember(req, recent, Answer(etag, body, content_type), age)
    resp.content_type = content_type
    resp.data = body


def _remember(req: falcon.Request, recent: RecentAnswers, answer: Answer, age: float) -> None:
    recent.put(req.relative_uri, answer, age)
    req.env[ANSWERED] = (req.relative_uri, req.path, answer)  # for web.replay


def _not_modified(req: falcon.Request, resp: falcon.Response, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110): `"x"` and `W/"x"` both match our `"x"`. The
    raw header is searched rather than parsed; our tags are 24 hex digits in quotes."""
    resp.set_header("ETag", etag)
    resp.context.cache = "data"
    raw = req.get_header("If-None-Match")
    if raw and (etag in raw or raw.strip() == "*"):
        resp.status = falcon.HTTP_304
        return True
    return False


def _send_recent(req: falcon.Request, resp: falcon.Response, recent: RecentAnswers) -> bool:
    """Answer from the last answer to this very request, if it is recent enough."""
    answer = recent.get(req.relative_uri)
    if answer is None:
        return False
    if not _not_modified(req, resp, answer.etag):
        if answer.body is None:  # only a 304 was recent: render as usual
            return False
        resp.content_type = answer.content_type
        resp.data = answer.body
    req.env[ANSWERED] = (req.relative_uri, req.path, answer)  # for web.replay
    return True


def _layer(req: falcon.Request) -> Layer:
    """The layer a read asks for: a category's (or all's), by window, sliced by light and days
    (summed from the stored time atoms on read: ``GridReader``)."""
    return Layer(
        CATEGORY.parse(req.get_param("category")),
        WINDOW.parse(req.get_param("window")),
        LIGHT.parse(req.get_param("light")),
        DAYS_PARAM.parse(req.get_param("days")),
    )


class HeatmapResource:
    def __init__(
        self, reader: GridReader, pyramid: Pyramid, max_cells: int, recent: RecentAnswers
    ) -> None:
        self._reader = reader
        self._pyramid = pyramid
        self._max_cells = max_cells
        self._bodies = BodyCache()
        self._recent = recent

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if _send_recent(req, resp, self._recent):
            return
        west, south, east, north = BBOX.parse(req.get_param("bbox"))
        asked = _layer(req)
        zoom = self._zoom(req.get_param("zoom"), west, south, east, north)
        n = TILE << zoom
        mx0, my0 = lonlat_to_world(np.array([west]), np.array([north]))
        mx1, my1 = lonlat_to_world(np.array([east]), np.array([south]))
        c0, r0 = math.floor(mx0[0] * n), math.floor(my0[0] * n)
        c1 = max(math.ceil(mx1[0] * n), c0 + 1)
        r1 = max(math.ceil(my1[0] * n), r0 + 1)
        c1, r1 = min(c1, n), min(r1, n)
        layer = layer_key(asked.category, asked.window, asked.light, asked.days)
        tiles = self._reader.region_tiles(r0, c0, r1, c1)
        versions, age = self._reader.versions(layer, zoom, tiles)
        etag = _etag("grid", layer, zoom, r0, c0, r1, c1, round(south + north, 6), versions)

        def render_body() -> bytes:
            return self._render(layer, asked, zoom, (r0, c0, r1, c1), south, north)

        _send_cached(
            req, resp, etag, self._bodies, render_body, falcon.MEDIA_JSON, self._recent, age
        )

    def _render(
        self,
        layer: str,
        asked: Layer,
        zoom: int,
        cells: tuple[int, int, int, int],
        south: float,
        north: float,
    ) -> bytes:
        r0, c0, r1, c1 = cells
        n = TILE << zoom
        values, computed_at = self._reader.region(layer, zoom, r0, c0, r1, c1)
        lat_mid = (south + north) / 2
        bandwidth = self._pyramid.bandwidth_used_m(zoom, lat_mid)
        low, high = render.scale_for(bandwidth)
        w_lon, n_lat = world_to_lonlat(c0 / n, r0 / n)
        e_lon, s_lat = world_to_lonlat(c1 / n, r1 / n)
        peak = float(values.max(initial=0.0))
        body = {
            "bbox": [
                round(float(w_lon), 7),
                round(float(s_lat), 7),
                round(float(e_lon), 7),
                round(float(n_lat), 7),
            ],
            "zoom": zoom,
            "width": c1 - c0,
            "height": r1 - r0,
            "values": _rounded(values),
            "unit": "reports/km2",
            "bandwidth_m": round(bandwidth, 3),
            "computed_at": computed_at,
            "category": asked.category,
            "window": asked.window,
            "light": asked.light,
            "days": asked.days,
            "max_value": _sig(peak),
            "scale": {"min": _sig(low), "max": _sig(high)},
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _zoom(self, raw: str | None, west: float, south: float, east: float, north: float) -> int:
        def cells(z: int) -> int:
            n = TILE << z
            mx0, my0 = lonlat_to_world(np.array([west]), np.array([north]))
            mx1, my1 = lonlat_to_world(np.array([east]), np.array([south]))
            w = math.ceil(mx1[0] * n) - math.floor(mx0[0] * n)
            h = math.ceil(my1[0] * n) - math.floor(my0[0] * n)
            return max(w, 1) * max(h, 1)

        max_zoom = self._pyramid.max_zoom
        zoom = ZOOM.parse(raw, max_zoom)
        if zoom is None:
            for z in range(max_zoom, -1, -1):
                if cells(z) <= self._max_cells:
                    return z
            return 0
        if cells(zoom) > self._max_cells:
            raise BadRequest(
                f"bbox at zoom {zoom} spans {cells(zoom)} cells, more than the cap of "
                f"{self._max_cells}; use a lower zoom or a smaller bbox, or omit zoom",
                field="bbox",
            )
        return zoom


class TileResource:
    def __init__(self, reader: GridReader, pyramid: Pyramid, recent: RecentAnswers) -> None:
        self._reader = reader
        self._pyramid = pyramid
        self._bodies = BodyCache()
        self._recent = recent

    def on_get(self, req: falcon.Request, resp: falcon.Response, z: int, x: int, y: str) -> None:
        if _send_recent(req, resp, self._recent):
            return
        if not y.isdigit():
            raise falcon.HTTPNotFound()
        ty = int(y)
        if not 0 <= z <= self._pyramid.max_zoom or not (0 <= x < (1 << z) and ty < (1 << z)):
            raise falcon.HTTPNotFound(description="no such tile")
        asked = _layer(req)
        layer = layer_key(asked.category, asked.window, asked.light, asked.days)
        versions, age = self._reader.versions(layer, z, [(x, ty)])
        etag = _etag("tile", layer, z, x, ty, versions)

        def render_body() -> bytes:
            tile = self._reader.tiles(layer, z, [(x, ty)])[(x, ty)]
            if tile.values is None:
                return render.transparent_tile()
            bandwidth = self._pyramid.bandwidth_used_m(z, tile_center_lat(z, ty))
            low, high = render.scale_for(bandwidth)
            return render.encode_png(render.colorize(tile.values, low, high))

        _send_cached(req, resp, etag, self._bodies, render_body, "image/png", self._recent, age)


def _sig(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def _rounded(values: np.ndarray) -> list[list[float]]:
    """Four significant digits relative to the peak keeps answers small without losing shape."""
    peak = float(values.max(initial=0.0))
    decimals = 0 if peak <= 0 else max(0, 4 - math.floor(math.log10(peak)) - 1)
    rows: list[list[float]] = np.round(values, decimals).tolist()
    return rows
