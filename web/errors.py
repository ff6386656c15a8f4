"""Domain errors to HTTP answers, in one table.

Every error body has the same shape, ``{"error", "message", "field", "errors"}``, so clients
show a message next to the field it names; no stack trace or internal name ever leaves.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from shared.model.report import ValidationError
from web.enqueue import QueueUnavailable

log = logging.getLogger("safetyheatmap.web")


class BadRequest(Exception):
    """Malformed input that is not a field-level problem (or a query parameter)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class MalformedJSON(BadRequest):
    pass


class BodyTooLarge(BadRequest):
    pass


class UnsupportedMediaType(BadRequest):
    pass


# exception type -> (status, error code)
STATUS_TABLE: dict[type[Exception], tuple[str, str]] = {
    MalformedJSON: (falcon.HTTP_400, "malformed_json"),
    BodyTooLarge: (falcon.HTTP_413, "body_too_large"),
    UnsupportedMediaType: (falcon.HTTP_415, "unsupported_media_type"),
    BadRequest: (falcon.HTTP_400, "bad_request"),
    ValidationError: (falcon.HTTP_422, "validation_failed"),
    QueueUnavailable: (falcon.HTTP_503, "queue_unavailable"),
}


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    errors = [{"field": field, "message": message}] if field else []
    return {"error": code, "message": message, "field": field, "errors": errors}


def install(app: falcon.App, retry_after: int) -> None:
    def domain_error(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any
    ) -> None:
        for kind in type(ex).__mro__:
            if kind in STATUS_TABLE:
                status, code = STATUS_TABLE[kind]
                break
        else:  # pragma: no cover - install() only registers the table's types
            raise ex
        field = getattr(ex, "field", None)
        message = getattr(ex, "message", None) or "the service is temporarily unavailable"
        if isinstance(ex, QueueUnavailable):
            message = "the queue is unavailable; retry later"
            resp.set_header("Retry-After", str(retry_after))
        resp.status = status
        resp.media = error_body(code, message, field)

    def http_error(
        req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
    ) -> None:
        resp.status = ex.status
        if ex.headers:
            resp.set_headers(ex.headers)
        code = str(ex.title or "error").lower().replace(" ", "_")
        resp.media = error_body(code, str(ex.description or ex.title or "error"), None)

    def unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
        log.exception("unhandled error", extra={"path": req.path})
        resp.status = falcon.HTTP_500
        resp.media = error_body("internal_error", "internal error", None)

    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    for kind in STATUS_TABLE:
        app.add_error_handler(kind, domain_error)
