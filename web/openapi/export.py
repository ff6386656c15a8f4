"""The path item of ``heatmap/export``, in its own module to keep paths.py small."""

from __future__ import annotations

from typing import Any

from shared.config.settings import Settings
from web.openapi.paths import (
    _ETAG,
    _NOT_MODIFIED,
    API,
    _error,
    _example_error,
    _layer_parameters,
)
from web.params import BBOX, FORMAT, ZOOM


def export_paths(settings: Settings) -> dict[str, Any]:
    json_ok = {"description": "OK", "headers": {"ETag": _ETAG}}
    return {
        f"{API}/heatmap/export": {
            "get": {
                "operationId": "exportHeatmap",
                "summary": "The density grid of heatmap/get as an open-data file",
                "description": (
                    "Exactly the densities the map shows (reports/km2; cells the privacy rule "
                    "hides are left out, or 0 in GeoTIFF), as an attachment. Metadata (unit, "
                    "zoom, bandwidth_m, privacy_min_reports, category, window, light, days, "
                    "computed_at, "
                    f"licence: {settings.data_licence}) is in the GeoJSON's top level, the "
                    "GeoTIFF's GDAL_METADATA and ImageDescription tags, and the CSV answer's "
                    "`X-SafetyHeatmap-*` headers. bbox, zoom and the cell cap "
                    f"({settings.max_grid_cells} cells) as for heatmap/get."
                ),
                "parameters": [
                    BBOX.parameter(),
                    FORMAT.parameter(),
                    ZOOM.parameter(settings.max_zoom),
                    *_layer_parameters(),
                ],
                "responses": {
                    "200": {
                        **json_ok,
                        "description": "The file (Content-Disposition: attachment).",
                        "content": {
                            "application/geo+json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}},
                            "image/tiff": {"schema": {"type": "string"}},
                        },
                    },
                    "304": _NOT_MODIFIED,
                    "400": _error(
                        "A query parameter is wrong; `field` names it.",
                        _example_error(lambda: BBOX.parse(None), "bbox"),
                    ),
                    "422": _error(
                        "`format` is not one of the list.",
                        _example_error(lambda: FORMAT.parse("kml"), "format"),
                    ),
                },
            }
        },
    }
