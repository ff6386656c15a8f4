"""Repeated heatmap reads answered in front of the framework, as the framework answered them.

Many viewers of one city ask for the very same tiles. Such a request is already answered from
the last answer to it (``web.grids.RecentAnswers``), but still went through Falcon: a request
and a response object, five middleware, routing and the resource, ~50 µs of a saturated
process's CPU against ~12 µs for static bytes (bench/app_cost.py). This layer records what the
full app sent for a heatmap read (status and headers) and, while ``RecentAnswers`` still holds
the same answer, sends the same again with the request's own id and access line.

Nothing here decides what an answer is: every header comes from the app's own answer, and a
variant (200 or 304) not seen yet, a changed answer or any other request goes to the app. The
key holds the Origin header, the one request header besides If-None-Match that the app's
answer depends on (CORS).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import falcon

from web.grids import Answer, RecentAnswers
from web.middleware import RequestIds, log_request

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ANSWERED = "safetyheatmap.answered"
"""The environ key a heatmap resource sets to (its RecentAnswers key, the logged path, the
answer) when it answers from, or into, RecentAnswers."""


@dataclass
class _Sent:
    status: str
    headers: list[tuple[str, str]]


@dataclass
class _Entry:
    recent_key: str
    path: str
    answer: weakref.ref[Answer]
    """Weak: RecentAnswers decides how long an answer (maybe a megabyte) lives, not this."""
    sent: dict[bool, _Sent] = field(default_factory=dict)
    """By `modified`: the 200 (True) and the 304 (False) as the app sent them."""


class Replay:
    def __init__(
        self, app: falcon.App, recent: RecentAnswers, ids: RequestIds, size: int = 4096
    ) -> None:
        self.inner = app
        """The Falcon app behind it (its routes, for the OpenAPI document's tests)."""
        self._app: WsgiApp = app
        self._recent = recent
        self._ids = ids
        self._size = size
        self._entries: dict[tuple[str, str, str | None], _Entry] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "GET":
            return self._app(environ, start_response)
        started = time.perf_counter()
        get = environ.get
        key = (get("PATH_INFO", ""), get("QUERY_STRING", ""), get("HTTP_ORIGIN"))
        entry = self._entries.get(key)
        if entry is not None:
            body = self._replay(entry, environ, start_response, started)
            if body is not None:
                return body
        return self._record(key, environ, start_response)

    def _replay(
        self,
        entry: _Entry,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        started: float,
    ) -> list[bytes] | None:
        """The recorded answer, if it is still the current one and its variant was seen."""
        answer = entry.answer()
        if answer is None or self._recent.get(entry.recent_key) is not answer:
            return None
        raw = environ.get("HTTP_IF_NONE_MATCH")
        # As the resource matches it (web.resources.heatmap._not_modified).
        modified = not (raw and (answer.etag in raw or raw.strip() == "*"))
        sent = entry.sent.get(modified)
        if sent is None or (modified and answer.body is None):
            return None
        rid = self._ids.of(environ.get("HTTP_X_REQUEST_ID"))
        start_response(sent.status, [*sent.headers, ("X-Request-Id", rid)])
        duration = (time.perf_counter() - started) * 1000
        log_request("GET", entry.path, int(sent.status[:3]), duration, rid)
        return [answer.body] if modified and answer.body is not None else []

    def _record(
        self,
        key: tuple[str, str, str | None],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Any:
        seen: list[_Sent] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.append(_Sent(status, [(k, v) for k, v in headers if k.lower() != "x-request-id"]))
            return start_response(status, headers, exc_info)

        body = self._app(environ, capture)
        answered = environ.get(ANSWERED)
        if answered is None or not seen or seen[-1].status[:3] not in ("200", "304"):
            return body
        recent_key, path, answer = answered
        sent = seen[-1]
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.answer() is not answer:
                entry = _Entry(recent_key, path, weakref.ref(answer))
                self._entries.pop(key, None)
                self._entries[key] = entry
                while len(self._entries) > self._size:
                    del self._entries[next(iter(self._entries))]  # the oldest entry
            entry.sent[sent.status.startswith("200")] = sent
        return body
