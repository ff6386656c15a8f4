"""The OpenAPI 3.1 document, built from the objects the code validates and answers with.

The request schema is :data:`shared.model.report.SUBMISSION_SCHEMA` itself, the enums come from
:mod:`shared.config.categories` and :data:`shared.geo.tiles.WINDOWS`, limits from
:class:`Settings`, and the
error shape from :func:`web.errors.error_body`; tests/unit/web/test_openapi.py checks that every
route of the app is documented with its methods (and nothing else is), that every example
validates, and that real answers of the app validate against the documented schemas.
"""

from __future__ import annotations

import copy
import importlib.metadata
from typing import Any

from shared.config.categories import ALL, CATEGORIES, CATEGORY_IDS
from shared.config.settings import Settings
from shared.geo.tiles import WINDOWS
from shared.model.report import DESCRIPTION_MAX, SUBMISSION_SCHEMA
from web.errors import error_body

API = "/api/safetyheatmap"
OPENAPI_PATH = f"{API}/openapi.json"

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
BBOX_PATTERN = rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,198}[!-~])?$"
REQUEST_ID_PATTERN = r"^[!-~]{1,64}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _error(description: str, example: dict[str, Any], **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json(_ref("Error"), example)}
    if headers:
        answer["headers"] = headers
    return answer


_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_ETAG = {
    "description": "Strong validator of the body; send it back in If-None-Match.",
    "schema": {"type": "string"},
}
_NOT_MODIFIED = {
    "description": "The client's copy (If-None-Match) is current; no body.",
    "headers": {"ETag": _ETAG},
}


def schemas(settings: Settings) -> dict[str, Any]:
    """The component schemas; also used by the tests to validate real answers."""
    category_layer = {"type": "string", "enum": [ALL, *sorted(CATEGORY_IDS)]}
    window = {"type": "string", "enum": list(WINDOWS)}
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
                "zoom": {"type": "integer", "minimum": 0, "maximum": settings.max_zoom},
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


def _layer_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": "category",
            "in": "query",
            "required": False,
            "description": "One category's layer, or `all` (default).",
            "schema": {"type": "string", "enum": [ALL, *sorted(CATEGORY_IDS)]},
        },
        {
            "name": "window",
            "in": "query",
            "required": False,
            "description": "Reports of the last 7, 30 or 365 days, or `all` (default).",
            "schema": {"type": "string", "enum": list(WINDOWS)},
        },
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "An ETag from an earlier answer: 304 if unchanged.",
            "schema": {"type": "string"},
        },
    ]


def _rate_limit_text(settings: Settings) -> str:
    if settings.rate_limit_per_minute <= 0:
        return "Submissions are not rate limited on this deployment."
    return (
        f"Each client may submit {settings.rate_limit_burst} reports at once and "
        f"{settings.rate_limit_per_minute} a minute after that (token bucket); beyond that the "
        "answer is 429 with Retry-After. Reads are not limited here."
    )


def build_document(settings: Settings, *, status: bool = True) -> dict[str, Any]:
    """``status``: whether the app serves the operators' status route (create_app's choice)."""
    max_body = settings.max_body_bytes
    good = {
        "lat": 51.5074,
        "lon": -0.1278,
        "category": "poor_lighting",
        "description": "Street lights out along the canal path",
        "occurred_at": "2026-11-20T21:15:00+01:00",
    }
    bad_field = "lat: must be between -90 and 90"
    json_ok = {"description": "OK", "headers": {"ETag": _ETAG}}
    paths: dict[str, Any] = {
        f"{API}/report/add": {
            "post": {
                "operationId": "addReport",
                "summary": "Report an unsafe place",
                "description": (
                    "Validated at the edge and acknowledged only once the report is on the "
                    "queue. Strings are normalised (Unicode NFC, control and bidi characters "
                    "stripped); `occurred_at` defaults to now and may not be in the future; "
                    "unknown fields are rejected. " + _rate_limit_text(settings)
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "A retry with the same key gets the same report id.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": IDEMPOTENCY_KEY_PATTERN,
                        },
                    },
                    {
                        "name": "X-Request-Id",
                        "in": "header",
                        "required": False,
                        "description": "Carried into logs and the queued task; echoed back.",
                        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "description": f"At most {max_body} bytes of JSON.",
                    "content": _json(_ref("Submission"), good),
                },
                "responses": {
                    "202": {
                        "description": "Queued; the heatmap shows it within seconds.",
                        "content": _json(
                            _ref("Accepted"),
                            {"id": "0b7ee1f4-6a5e-4f0c-9a55-2f4d1f1f5c8e", "status": "queued"},
                        ),
                    },
                    "400": _error(
                        "The body is not valid JSON.",
                        error_body("malformed_json", "the body is not valid JSON", None),
                    ),
                    "413": _error(
                        f"The body is larger than {max_body} bytes (not read in full).",
                        error_body(
                            "body_too_large", f"the body must be at most {max_body} bytes", None
                        ),
                    ),
                    "415": _error(
                        "The body is not application/json.",
                        error_body(
                            "unsupported_media_type", "send the report as application/json", None
                        ),
                    ),
                    "422": _error(
                        "A field (or the Idempotency-Key header) is wrong; `field` names it.",
                        error_body("validation_failed", bad_field, "lat"),
                    ),
                    "429": _error(
                        "Too many reports from this client; wait Retry-After seconds.",
                        error_body(
                            "rate_limited",
                            "too many reports from this address; retry after the given seconds",
                            None,
                        ),
                        **{"Retry-After": _RETRY_AFTER},
                    ),
                    "503": _error(
                        "The queue did not accept the report; nothing was stored. Retry.",
                        error_body(
                            "queue_unavailable", "the queue is unavailable; retry later", None
                        ),
                        **{"Retry-After": _RETRY_AFTER},
                    ),
                },
            }
        },
        f"{API}/heatmap/get": {
            "get": {
                "operationId": "getHeatmap",
                "summary": "Density grid for a bounding box",
                "description": (
                    "Without `zoom`, the finest zoom whose grid fits the cell cap "
                    f"({settings.max_grid_cells} cells) is chosen."
                ),
                "parameters": [
                    {
                        "name": "bbox",
                        "in": "query",
                        "required": True,
                        "description": "minLon,minLat,maxLon,maxLat in degrees (WGS84).",
                        "schema": {"type": "string", "pattern": BBOX_PATTERN},
                        "example": "-0.16,51.49,-0.06,51.53",
                    },
                    {
                        "name": "zoom",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": settings.max_zoom},
                    },
                    *_layer_parameters(),
                ],
                "responses": {
                    "200": {**json_ok, "content": _json(_ref("Heatmap"))},
                    "304": _NOT_MODIFIED,
                    "400": _error(
                        "A query parameter is wrong; `field` names it.",
                        error_body(
                            "bad_request",
                            "bbox is required: minLon,minLat,maxLon,maxLat",
                            "bbox",
                        ),
                    ),
                },
            }
        },
        f"{API}/heatmap/tiles/{{z}}/{{x}}/{{y}}.png": {
            "get": {
                "operationId": "getTile",
                "summary": "Colour PNG tile of the density (XYZ scheme)",
                "parameters": [
                    {
                        "name": "z",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": settings.max_zoom},
                    },
                    {
                        "name": "x",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    {
                        "name": "y",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    *_layer_parameters(),
                ],
                "responses": {
                    "200": {
                        **json_ok,
                        "description": "A 256x256 PNG (transparent where there is nothing).",
                        "content": {"image/png": {"schema": {"type": "string"}}},
                    },
                    "304": _NOT_MODIFIED,
                    "400": _error(
                        "`category` or `window` is wrong.",
                        error_body("bad_request", "window must be one of 7d, 30d", "window"),
                    ),
                    "404": _error(
                        "No such tile at this zoom.",
                        error_body("404_not_found", "no such tile", None),
                    ),
                },
            }
        },
        f"{API}/categories": {
            "get": {
                "operationId": "listCategories",
                "summary": "Report categories (ids are stable, labels may change)",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": _json(
                            {"type": "array", "items": _ref("Category")},
                            [{"id": cid, "label": label} for cid, label in CATEGORIES],
                        ),
                    }
                },
            }
        },
        f"{API}/config": {
            "get": {
                "operationId": "getConfig",
                "summary": "Display configuration for the page",
                "responses": {"200": {"description": "OK", "content": _json(_ref("Config"))}},
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                },
            }
        },
        f"{API}/status": {
            "get": {
                "operationId": "getStatus",
                "summary": "Is work flowing: queue and DLQ depth, last computation, freshness",
                "description": "Numbers and times only; a part that cannot be read is null and "
                "named in `unavailable`.",
                "responses": {"200": {"description": "OK", "content": _json(_ref("Status"))}},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness: the process answers",
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": _json(_ref("Health"), {"status": "ok"}),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: the queue and the tables answer",
                "responses": {
                    "200": {
                        "description": "Ready",
                        "content": _json(
                            _ref("Ready"),
                            {"status": "ready", "checks": {"queue": "ok", "tables": "ok"}},
                        ),
                    },
                    "503": {
                        "description": "A dependency does not answer",
                        "content": _json(
                            _ref("Ready"),
                            {"status": "not_ready", "checks": {"queue": "unavailable"}},
                        ),
                    },
                },
            }
        },
    }
    if not status:
        del paths[f"{API}/status"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SafetyHeatmap",
            "version": _version(),
            "description": (
                "Report unsafe places and read where reports cluster, as a kernel-density "
                "heatmap. Every error has the body {error, message, field, errors}."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas(settings)},
    }


def _version() -> str:
    try:
        return importlib.metadata.version("safetyheatmap")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "0.0.0"
