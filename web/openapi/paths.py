"""The path items: every route of the app with its parameters, bodies and answers.

Parameters are those of :mod:`web.params` and :data:`shared.model.report.IDEMPOTENCY_KEY_SCHEMA`
(the objects that parse them), the request body is the ``Submission`` component, and the
examples of 400 and 422 answers are what the code answers for a wrong value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.config.categories import CATEGORIES
from shared.config.settings import Settings
from shared.model.report import IDEMPOTENCY_KEY_SCHEMA, ValidationError, parse_submission
from web.errors import BadRequest, error_body
from web.params import BBOX, CATEGORY, DAYS_PARAM, LIGHT, WINDOW, ZOOM

API = "/api/safetyheatmap"
OPENAPI_PATH = f"{API}/openapi.json"
REQUEST_ID_PATTERN = r"^[!-~]{1,64}$"
"""Within what the request-id middleware keeps (1-64 printable characters); it replaces any
other id with a fresh one rather than refuse the request, so this is advice, not a check."""
_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""Any fixed time: the examples must not depend on when the document is built."""


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
_SUMMARY = {
    "type": "object",
    "required": ["open", "empty"],
    "properties": {
        "open": {
            "type": ["object", "null"],
            "required": ["lat", "lon", "zoom"],
            "properties": {
                "lat": {"type": "number"},
                "lon": {"type": "number"},
                "zoom": {"type": "integer"},
            },
        },
        "empty": {"type": "boolean", "description": "No area shows reports yet."},
    },
}
_SUMMARY_EX = {"open": {"lat": 51.50512, "lon": -0.08972, "zoom": 12}, "empty": False}
_NOT_MODIFIED = {
    "description": "The client's copy (If-None-Match) is current; no body.",
    "headers": {"ETag": _ETAG},
}


def _example_error(fail: Callable[[], object], field: str) -> dict[str, Any]:
    """The error body the code itself gives for a wrong value, so examples cannot go stale."""
    try:
        fail()
    except ValidationError as exc:
        return error_body("validation_failed", exc.message, exc.field)
    except BadRequest as exc:
        return error_body("bad_request", exc.message, exc.field)
    raise AssertionError(f"the example for {field} was accepted")  # pragma: no cover


def _time_error() -> dict[str, Any]:
    return _error(
        "`light` or `days` is not one of its values; `field` names it.",
        _example_error(lambda: LIGHT.parse("night"), "light"),
    )


def _layer_parameters() -> list[dict[str, Any]]:
    return [
        CATEGORY.parameter(),
        WINDOW.parameter(),
        LIGHT.parameter(),
        DAYS_PARAM.parameter(),
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


def paths(settings: Settings, *, status: bool = True) -> dict[str, Any]:
    """The path items; ``status``: whether the app serves the operators' status route."""
    max_body = settings.max_body_bytes
    good = {
        "lat": 51.5074,
        "lon": -0.1278,
        "category": "poor_lighting",
        "description": "Street lights out along the canal path",
        "occurred_at": "2026-11-20T21:15:00+01:00",
    }
    json_ok = {"description": "OK", "headers": {"ETag": _ETAG}}
    items: dict[str, Any] = {
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
                        "schema": copy.deepcopy(IDEMPOTENCY_KEY_SCHEMA),
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
                        _example_error(
                            lambda: parse_submission({**good, "lat": 91}, now=_NOW), "lat"
                        ),
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
                    BBOX.parameter(),
                    ZOOM.parameter(settings.max_zoom),
                    *_layer_parameters(),
                ],
                "responses": {
                    "200": {**json_ok, "content": _json(_ref("Heatmap"))},
                    "304": _NOT_MODIFIED,
                    "400": _error(
                        "A query parameter is wrong; `field` names it.",
                        _example_error(lambda: BBOX.parse(None), "bbox"),
                    ),
                    "422": _time_error(),
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
                        "schema": ZOOM.schema(settings.max_zoom),
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
                        _example_error(lambda: WINDOW.parse("2d"), "window"),
                    ),
                    "422": _time_error(),
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
        f"{API}/summary": {
            "get": {
                "operationId": "getSummary",
                "summary": "Where the page opens: the densest area the map shows, or none",
                "description": (
                    "Kept by the worker from the thresholded `all` layer at a coarse zoom "
                    "(cells ~300 m), never from report positions; null `open` means no "
                    "reports yet."
                ),
                "responses": {
                    "200": {"description": "OK", "content": _json(_SUMMARY, _SUMMARY_EX)}
                },
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
        del items[f"{API}/status"]
    return items
