"""A served density grid as open-data files: GeoJSON, CSV and GeoTIFF bytes (no I/O).

Units: stored grids already hold reports per km² at each cell centre (``density.kde`` divides
each cell's kernel mass by that cell's ground area, ``cell_area_km2``), and ``heatmap/get``
serves them as ``reports/km2``. The export writes those very values, so the conversion from
the grid's unit to the file's is the identity (times 1); a file never holds a report count.
Only cells the map shows carry a value: a cell the privacy rule hid is stored as 0 and is
left out of GeoJSON and CSV (and is 0 in the GeoTIFF), so no file reveals more than the map.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import tifffile

from shared.geo.tiles import world_to_lonlat

UNIT = "reports/km2"
WEB_MERCATOR_HALF = math.pi * 6_378_137.0
"""Half the world's width in EPSG:3857 metres."""

GEOKEYS_3857 = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 3857)
"""GeoKeyDirectory: version 1.1.0, 3 keys: projected model, pixel is area, EPSG:3857."""


@dataclass(frozen=True)
class Grid:
    """Global cells [r0, r0 + h) x [c0, c0 + w) at ``zoom`` (``TILE << zoom`` cells a side)."""

    values: np.ndarray
    zoom: int
    r0: int
    c0: int
    cells_per_side: int
    meta: dict[str, Any]
    """bandwidth_m, privacy_min_reports, category, window, computed_at, licence."""


def _lonlat(grid: Grid, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = grid.cells_per_side
    lon, lat = world_to_lonlat((grid.c0 + cols) / n, (grid.r0 + rows) / n)
    return np.round(lon, 7), np.round(lat, 7)


def _shown(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(grid.values > 0)
    return rows, cols


def _metadata(grid: Grid) -> dict[str, Any]:
    return {"unit": UNIT, "zoom": grid.zoom, **grid.meta}


def geojson(grid: Grid) -> bytes:
    """A FeatureCollection of cell polygons (WGS84); the metadata as foreign members."""
    rows, cols = _shown(grid)
    west, north = _lonlat(grid, cols, rows)
    east, south = _lonlat(grid, cols + 1, rows + 1)
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
            },
            "properties": {"density": float(v)},
        }
        for w, s, e, n, v in zip(
            west.tolist(),
            south.tolist(),
            east.tolist(),
            north.tolist(),
            grid.values[rows, cols].tolist(),
            strict=True,
        )
    ]
    body = {"type": "FeatureCollection", **_metadata(grid), "features": features}
    return json.dumps(body, separators=(",", ":")).encode()


CSV_COLUMNS = ("lon", "lat", "density")


def csv_bytes(grid: Grid) -> bytes:
    """One row per shown cell centre (WGS84). Plain RFC 4180: the metadata goes in headers."""
    rows, cols = _shown(grid)
    lon, lat = _lonlat(grid, cols + 0.5, rows + 0.5)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(zip(lon.tolist(), lat.tolist(), grid.values[rows, cols].tolist(), strict=True))
    return out.getvalue().encode()


def geotiff(grid: Grid) -> bytes:
    """A float32 GeoTIFF in EPSG:3857, its georeferencing from the cells' global position.

    The metadata goes in GDAL_METADATA (tag 42112, read by GDAL/rasterio as dataset tags) and
    as JSON in ImageDescription.
    """
    n = grid.cells_per_side
    size = 2 * WEB_MERCATOR_HALF / n
    x0 = -WEB_MERCATOR_HALF + grid.c0 * size
    y0 = WEB_MERCATOR_HALF - grid.r0 * size
    meta = _metadata(grid)
    items = "".join(f'<Item name="{k}">{_xml(v)}</Item>' for k, v in meta.items())
    extratags = [
        (33550, "d", 3, (size, size, 0.0), True),  # ModelPixelScale
        (33922, "d", 6, (0.0, 0.0, 0.0, x0, y0, 0.0), True),  # ModelTiepoint
        (34735, "H", len(GEOKEYS_3857), GEOKEYS_3857, True),  # GeoKeyDirectory
        (42112, "s", 0, f"<GDALMetadata>{items}</GDALMetadata>", True),
    ]
    out = io.BytesIO()
    tifffile.imwrite(
        out,
        grid.values.astype(np.float32),
        description=json.dumps(meta),
        metadata=None,
        extratags=extratags,
    )
    return out.getvalue()


def _xml(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def csv_headers(grid: Grid) -> dict[str, str]:
    """The CSV's metadata as ``X-SafetyHeatmap-<Key>`` response headers (CSV has no place)."""
    return {
        "X-SafetyHeatmap-" + "-".join(p.capitalize() for p in k.split("_")): str(v)
        for k, v in _metadata(grid).items()
    }


FORMATS: dict[str, tuple[str, str]] = {
    "geojson": ("application/geo+json", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "geotiff": ("image/tiff; application=geotiff", "tif"),
}
"""format -> (Content-Type, file extension)."""

WRITERS = {"geojson": geojson, "csv": csv_bytes, "geotiff": geotiff}
