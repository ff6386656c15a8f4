"""The heatmap reads' query and path parameters: each one parses and publishes itself.

A parameter holds its accepted values once; ``parse`` is what the resources call and
``parameter`` (or ``schema``) what ``web.openapi`` publishes, so the document cannot promise
other values than the code accepts. A wrong value is a 400 or 422 naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import ANY, WINDOWS
from shared.model.report import ValidationError
from shared.model.when import DAYS, LIGHTS
from web.errors import BadRequest

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
BBOX_PATTERN = rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
"""Four decimal numbers; ``float`` accepts more (inf, underscores), the document asks this."""


@dataclass(frozen=True)
class Choice:
    """An optional query parameter out of a fixed list; ``default`` when absent or empty. A value
    out of the list is a 400 naming the parameter, or with ``unprocessable`` a 422 (the time
    filters: their issue asked for 422, and category and window keep their 400)."""

    name: str
    options: tuple[str, ...]
    default: str
    description: str
    message: str
    unprocessable: bool = False

    def parse(self, raw: str | None) -> str:
        value = raw or self.default
        if value not in self.options:
            if self.unprocessable:
                raise ValidationError(self.name, self.message)
            raise BadRequest(self.message, field=self.name)
        return value

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "description": self.description,
            "schema": {"type": "string", "enum": list(self.options)},
        }


CATEGORY = Choice(
    "category",
    (ALL, *sorted(CATEGORY_IDS)),
    ALL,
    "One category's layer, or `all` (default).",
    "category must be 'all' or one of " + ", ".join(sorted(CATEGORY_IDS)),
)
WINDOW = Choice(
    "window",
    tuple(WINDOWS),
    "all",
    "Reports of the last 7, 30 or 365 days, or `all` (default).",
    "window must be one of " + ", ".join(WINDOWS),
)
LIGHT = Choice(
    "light",
    (ANY, *LIGHTS),
    ANY,
    "Reports made in daylight, or after dark (the sun below civil twilight, -6 degrees, at the "
    "report's place and time), or `any` (default).",
    "must be one of " + ", ".join((ANY, *LIGHTS)),
    unprocessable=True,
)
DAYS_PARAM = Choice(
    "days",
    (ANY, *DAYS),
    ANY,
    "Reports made on weekdays, or on weekends (Saturday and Sunday in the local time of the "
    "report's place), or `any` (default).",
    "must be one of " + ", ".join((ANY, *DAYS)),
    unprocessable=True,
)


@dataclass(frozen=True)
class Bbox:
    """The required ``minLon,minLat,maxLon,maxLat`` in degrees (WGS84), west before east."""

    name: str = "bbox"

    def parse(self, raw: str | None) -> tuple[float, float, float, float]:
        if not raw:
            raise BadRequest("bbox is required: minLon,minLat,maxLon,maxLat", field=self.name)
        try:
            west, south, east, north = (float(part) for part in raw.split(","))
        except ValueError:
            raise BadRequest(
                "bbox must be four numbers: minLon,minLat,maxLon,maxLat", field=self.name
            ) from None
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise BadRequest("bbox values must be finite", field=self.name)
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise BadRequest(
                "bbox must satisfy -180 <= minLon < maxLon <= 180 and -90 <= minLat < maxLat <= 90",
                field=self.name,
            )
        return west, south, east, north

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": True,
            "description": "minLon,minLat,maxLon,maxLat in degrees (WGS84).",
            "schema": {"type": "string", "pattern": BBOX_PATTERN},
            "example": "-0.16,51.49,-0.06,51.53",
        }


BBOX = Bbox()


@dataclass(frozen=True)
class Zoom:
    """An optional zoom level from 0 to the deployment's ``max_zoom`` (None when absent)."""

    name: str = "zoom"

    def parse(self, raw: str | None, max_zoom: int) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            zoom = int(raw)
        except ValueError:
            raise BadRequest("zoom must be an integer", field=self.name) from None
        if not 0 <= zoom <= max_zoom:
            raise BadRequest(f"zoom must be between 0 and {max_zoom}", field=self.name)
        return zoom

    @staticmethod
    def schema(max_zoom: int) -> dict[str, Any]:
        """Also the tile route's ``z``, where a zoom out of range is a 404 (no such tile)."""
        return {"type": "integer", "minimum": 0, "maximum": max_zoom}

    def parameter(self, max_zoom: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "schema": self.schema(max_zoom),
        }


ZOOM = Zoom()


@dataclass(frozen=True)
class Format:
    """The export's required file format; one out of the list is a 422 naming ``format``."""

    name: str = "format"
    options: tuple[str, ...] = ("geojson", "csv", "geotiff")

    def parse(self, raw: str | None) -> str:
        if raw not in self.options:
            raise ValidationError(self.name, "must be one of " + ", ".join(self.options))
        return raw

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": True,
            "description": "The file format: GeoJSON cell polygons, CSV cell centres, GeoTIFF.",
            "schema": {"type": "string", "enum": list(self.options)},
        }


FORMAT = Format()
