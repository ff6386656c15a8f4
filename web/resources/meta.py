"""Small read-only facts the page needs: categories, display configuration and where the page
opens when its URL names no view.

The opening is the worker's summary (``workers.summary``); the web serves the kept item, read at
most once per ``TTL_S`` per process, so a page load costs no read of reports and, under many
viewers, almost no read at all.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import falcon
from botocore.exceptions import BotoCoreError, ClientError

from shared.config import categories
from shared.config.settings import Settings
from shared.geo.tiles import WINDOWS
from shared.model.report import DESCRIPTION_MAX


class CategoriesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = categories.as_json()
        resp.context.cache = "data"


class ConfigResource:
    def __init__(self, settings: Settings) -> None:
        self._config = {
            "base_tiles_url": settings.base_tiles_url,
            "base_tiles_attribution": settings.base_tiles_attribution,
            "max_zoom": settings.max_zoom,
            "bandwidth_m": settings.bandwidth_m,
            "privacy_min_reports": settings.privacy_min_reports,
            "privacy_radius_m": settings.privacy_radius_factor * settings.bandwidth_m,
            "windows": list(WINDOWS),
            "description_max": DESCRIPTION_MAX,
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._config
        resp.context.cache = "data"


TTL_S = 30.0
"""The opening moves with the densest area, which changes over hours, not seconds."""


def opening(raw: str | None) -> dict[str, Any] | None:
    """The kept item's opening (``{"lat", "lon", "zoom"}``, as ``workers.summary`` writes it)
    or None: no reports, or nothing readable."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return None
    where = body.get("open") if isinstance(body, dict) else None
    return where if isinstance(where, dict) else None


class SummaryResource:
    def __init__(
        self,
        load: Callable[[], str | None],
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: dict[str, Any] | None = None
        self._at = 0.0

    def answer(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._answer is None or now - self._at >= self._ttl:
                try:
                    where = opening(self._load())
                except (BotoCoreError, ClientError):
                    if self._answer is not None:
                        return self._answer  # a stale opening beats none
                    where = None
                self._answer = {"open": where, "empty": where is None}
                self._at = now
            return self._answer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.answer()
        resp.context.cache = "data"
