"""The component schemas: the request body is the model's, the answers' are written here.

``Submission`` is :data:`shared.model.report.SUBMISSION_SCHEMA`, built from the rules that
validate; the layer enums and the zoom range are those of :mod:`web.params`. The answers' shapes
are checked against real answers of the app by tests/unit/web/test_openapi.py.
"""

from __future__ import annotations

import copy
from typing import Any

from shared.config.categories import CATEGORIES
from shared.config.settings import Settings
from shared.model.report import DESCRIPTION_MAX, SUBMISSION_SCHEMA
from web.params import CATEGORY, DAYS_PARAM, LIGHT, WINDOW, ZOOM


def schemas(settings: Settings) -> dict[str, Any]:
    """The component schemas; also used by the tests to validate real answers."""
    category_layer = CATEGORY.parameter()["schema"]
    window = WINDOW.parameter()["schema"]
    return {
        "Submission": copy.deepcopy(SUBMISSION_SCHEMA),
        "Accepted": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"const": "queued"},
            },
        },
        "Error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error", "message", "field", "errors"],
            "properties": {
                "error": {"type": "string", "description": "Machine-readable code."},
                "message": {"type": "string", "description": "For people; names the field."},
                "field": {
                    "type": ["string", "null"],
                    "description": "The body field, query parameter or header at fault.",
                },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Category": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "label"],
            "properties": {
                "id": {"type": "string", "enum": [cid for cid, _ in CATEGORIES]},
                "label": {"type": "string"},
            },
        },
        "Config": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "base_tiles_url",
                "base_tiles_attribution",
                "max_zoom",
                "bandwidth_m",
                "privacy_min_reports",
                "privacy_radius_m",
                "windows",
                "description_max",
            ],
            "properties": {
                "base_tiles_url": {"type": "string"},
                "base_tiles_attribution": {"type": "string"},
                "max_zoom": {"type": "integer", "minimum": 0, "maximum": 22},
                "bandwidth_m": {"type": "number", "exclusiveMinimum": 0},
                "privacy_min_reports": {"type": "integer", "minimum": 1},
                "privacy_radius_m": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "The privacy rule's circle at the finest zooms, in metres.",
                },
                "windows": {"type": "array", "items": window},
                "description_max": {"const": DESCRIPTION_MAX},
            },
        },
        "Heatmap": {
            "type": "object",
            "additionalProperties": False,
            "description": (
                "Kernel density on the Web Mercator cell grid of `zoom`, north row first. "
                "A cell is 0 unless at least privacy_min_reports distinct submitters reported "
                "within privacy_radius_m (PRIVACY_RADIUS_FACTOR effective bandwidths) of it, and "
                "no difference of nested slices could isolate fewer; individual reports are "
                "never returned."
            ),
            "required": [
                "bbox",
                "zoom",
                "width",
                "height",
                "values",
                "unit",
                "bandwidth_m",
                "computed_at",
                "category",
                "window",
                "light",
                "days",
                "max_value",
                "scale",
            ],
            "properties": {
                "bbox": {
                    "description": "Cell-aligned [minLon, minLat, maxLon, maxLat] of `values`.",
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 4,
                    "maxItems": 4,
                },
                "zoom": ZOOM.schema(settings.max_zoom),
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "values": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number", "minimum": 0}},
                },
                "unit": {"const": "reports/km2"},
                "bandwidth_m": {"type": "number", "exclusiveMinimum": 0},
                "computed_at": {"type": ["string", "null"], "format": "date-time"},
                "category": category_layer,
                "window": window,
                "light": LIGHT.parameter()["schema"],
                "days": DAYS_PARAM.parameter()["schema"],
                "max_value": {"type": "number", "minimum": 0},
                "scale": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["min", "max"],
                    "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
                },
            },
        },
        "Status": {
            "type": "object",
            "required": ["at", "unavailable"],
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "unavailable": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["queue", "dlq", "tables"]},
                },
                "queue": _queue_depth(),
                "dlq": _queue_depth(),
                "last_computed_at": {"type": ["string", "null"], "format": "date-time"},
                "last_computed_age_s": {"type": ["number", "null"]},
                "dirty_partitions": {"type": ["integer", "null"], "minimum": 0},
                "freshness": {"type": ["object", "null"]},
            },
        },
        "Health": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Ready": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "enum": ["ok", "unavailable"]},
                },
            },
        },
    }


def _queue_depth() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    return {
        "type": ["object", "null"],
        "required": ["visible", "in_flight", "delayed"],
        "properties": {"visible": count, "in_flight": count, "delayed": count},
    }
