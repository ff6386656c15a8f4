"""Cross-cutting concerns: caching, security headers, request ids, request logs, CORS."""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from typing import Any

import falcon

from shared.config.settings import Settings
from shared.obs.metrics import Metrics, metrics

access_log = logging.getLogger("safetyheatmap.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class CacheHeaders:
    """Cache-Control from settings, only on successful GET/HEAD; everything else no-store.

    Resources name their cache class in ``resp.context.cache``: ``"data"`` (grids, lists),
    ``"static"`` (hashed assets), ``"revalidate"`` (the page itself) or nothing.
    """

    def __init__(self, settings: Settings) -> None:
        self._policies = {
            "data": f"public, max-age={settings.cache_max_age}",
            "static": f"public, max-age={settings.static_max_age}",
            "revalidate": "no-cache",
        }

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        status = resp.status_code
        ok = req_succeeded and (200 <= status < 300 or status == 304)
        policy = self._policies.get(str(resp.context.get("cache") or "")) if ok else None
        if req.method in ("GET", "HEAD") and policy:
            resp.set_header("Cache-Control", policy)
        else:
            resp.set_header("Cache-Control", "no-store")


SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


class SecurityHeaders:
    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_headers(SECURITY_HEADERS)


class RequestIds:
    """A request's id: the client's (printable, at most 64 characters) or a fresh one.

    A fresh id is a random per-process prefix and a counter: unique like a uuid4 within any
    realistic fleet, without reading the OS's random source on every cached read."""

    def __init__(self) -> None:
        self._prefix = ""
        self._count = itertools.count()
        self._pid = -1

    def of(self, raw: str | None) -> str:
        raw = raw or ""
        return raw if 0 < len(raw) <= 64 and raw.isprintable() else self._fresh()

    def _fresh(self) -> str:
        if self._pid != os.getpid():  # gunicorn forks after building the app: new prefix
            self._prefix = uuid.uuid4().hex[:16]
            self._pid = os.getpid()
        return f"{self._prefix}{next(self._count):016x}"


class RequestId:
    """Carries a request id from the client (or a fresh one) into logs and the task message."""

    def __init__(self, ids: RequestIds | None = None) -> None:
        self._ids = ids or RequestIds()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = self._ids.of(req.get_header("X-Request-Id"))

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        rid = req.context.get("request_id")
        if rid:
            resp.set_header("X-Request-Id", rid)


def log_request(
    method: str, path: str, status: int, duration_ms: float | None, request_id: str | None
) -> None:
    """The access line: one per request, whichever way it was answered."""
    access_log.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": None if duration_ms is None else round(duration_ms, 2),
            "request_id": request_id,
        },
    )


class RequestLog:
    """One log line per request (method, path, status, duration_ms, request_id), and the
    report submissions' outcomes as metrics: ``ReportsAccepted``, ``ReportsRejected`` by
    ``Reason`` (the error code of the answer). First in the middleware list, so it times the
    whole request and sees the final status. No client address and no query string is logged."""

    def __init__(self, stats: Metrics | None = None) -> None:
        self._stats = stats

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = req.context.get("started")
        duration = (time.perf_counter() - started) * 1000 if started else None
        status = resp.status_code
        log_request(req.method, req.path, status, duration, req.context.get("request_id"))
        if req.method == "POST" and req.path.endswith("/report/add"):
            stats = self._stats or metrics()
            if status == 202:
                stats.count("ReportsAccepted")
            else:
                media = resp.media if isinstance(resp.media, dict) else {}
                reason = str(media.get("error") or f"http_{status}")
                stats.count("ReportsRejected", Reason=reason)
