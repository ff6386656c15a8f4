"""``heatmap/export``: the grid ``heatmap/get`` serves, as a GeoJSON, CSV or GeoTIFF file.

It reads the same stored, thresholded tiles through the same ``GridReader`` with the same
bbox, zoom and cell-cap rules (it is a ``HeatmapResource``), so a file holds exactly the
densities the map shows; it never reads reports.
"""

from __future__ import annotations

import math

import falcon
import numpy as np

from shared.geo import export
from shared.geo.tiles import TILE, Pyramid, layer_key, lonlat_to_world
from web.grids import GridReader, RecentAnswers
from web.params import BBOX, FORMAT
from web.resources.heatmap import (
    HeatmapResource,
    _etag,
    _layer,
    _rounded,
    _send_cached,
    _send_recent,
)


class ExportResource(HeatmapResource):
    def __init__(
        self,
        reader: GridReader,
        pyramid: Pyramid,
        max_cells: int,
        recent: RecentAnswers,
        privacy_min_reports: int,
        licence: str,
    ) -> None:
        super().__init__(reader, pyramid, max_cells, recent)
        self._k = privacy_min_reports
        self._licence = licence

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fmt = FORMAT.parse(req.get_param("format"))
        content_type, ext = export.FORMATS[fmt]
        # CSV's metadata headers are not in a recent answer (the replay in front keeps them).
        if fmt != "csv" and _send_recent(req, resp, self._recent):
            self._attach(req, resp, ext)
            return
        west, south, east, north = BBOX.parse(req.get_param("bbox"))
        asked = _layer(req)
        zoom = self._zoom(req.get_param("zoom"), west, south, east, north)
        n = TILE << zoom
        mx0, my0 = lonlat_to_world(np.array([west]), np.array([north]))
        mx1, my1 = lonlat_to_world(np.array([east]), np.array([south]))
        c0, r0 = math.floor(mx0[0] * n), math.floor(my0[0] * n)
        c1 = min(max(math.ceil(mx1[0] * n), c0 + 1), n)
        r1 = min(max(math.ceil(my1[0] * n), r0 + 1), n)
        layer = layer_key(asked.category, asked.window, asked.light, asked.days)
        tiles = self._reader.region_tiles(r0, c0, r1, c1)
        versions, age = self._reader.versions(layer, zoom, tiles)
        etag = _etag(
            "export", fmt, self._licence, layer, zoom, r0, c0, r1, c1,
            round(south + north, 6), versions,
        )  # fmt: skip

        def grid() -> export.Grid:
            values, computed_at = self._reader.region(layer, zoom, r0, c0, r1, c1)
            values = np.asarray(_rounded(values))  # the digits heatmap/get shows
            bandwidth = self._pyramid.bandwidth_used_m(zoom, (south + north) / 2)
            meta = {
                "bandwidth_m": round(bandwidth, 3),
                "privacy_min_reports": self._k,
                "category": asked.category,
                "window": asked.window,
                "light": asked.light,
                "days": asked.days,
                "computed_at": computed_at,
                "licence": self._licence,
            }
            return export.Grid(values, zoom, r0, c0, n, meta)

        if fmt == "csv":  # its metadata travels in headers, so they need the grid
            shown = grid()
            resp.set_headers(export.csv_headers(shown))
            grid = lambda: shown  # noqa: E731
        _send_cached(
            req,
            resp,
            etag,
            self._bodies,
            lambda: export.WRITERS[fmt](grid()),
            content_type,
            self._recent,
            age,
        )
        self._attach(req, resp, ext)

    @staticmethod
    def _attach(req: falcon.Request, resp: falcon.Response, ext: str) -> None:
        category = req.get_param("category") or "all"
        window = req.get_param("window") or "all"
        name = f"safetyheatmap-{category}-{window}.{ext}"
        resp.set_header("Content-Disposition", f'attachment; filename="{name}"')
