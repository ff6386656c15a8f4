"""GET /summary: the worker's kept opening, served from a short in-process cache."""

from __future__ import annotations

import json

from falcon import testing

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from web.app import create_app
from web.grids import BlobCache, GridReader
from web.resources.meta import SummaryResource

URL = "/api/safetyheatmap/summary"
KEPT = json.dumps({"zoom": 9, "cells": {}, "open": {"lat": 48.85, "lon": 2.35, "zoom": 12}})


class Store:
    def __init__(self, value: str | None) -> None:
        self.value = value
        self.reads = 0

    def __call__(self) -> str | None:
        self.reads += 1
        return self.value


def _client(load: Store | None) -> testing.TestClient:
    reader = GridReader(BlobCache(None, ttl=60, size=4), Pyramid(200, 16))  # type: ignore[arg-type]
    app = create_app(Settings(), lambda r, i: None, reader, {}, lambda: None, summary=load)  # type: ignore[arg-type,return-value]
    return testing.TestClient(app)


def test_serves_the_kept_opening_cacheable() -> None:
    resp = _client(Store(KEPT)).simulate_get(URL)
    assert resp.status_code == 200
    assert resp.json == {"open": {"lat": 48.85, "lon": 2.35, "zoom": 12}, "empty": False}
    assert resp.headers["Cache-Control"].startswith("public")


def test_no_reports_is_empty() -> None:
    for load in (None, Store(None), Store('{"zoom": 9, "cells": {}}')):
        assert _client(load).simulate_get(URL).json == {"open": None, "empty": True}


def test_reads_the_store_once_per_ttl() -> None:
    store, now = Store(KEPT), [0.0]
    resource = SummaryResource(store, ttl_s=30, clock=lambda: now[0])
    resource.answer()
    resource.answer()
    assert store.reads == 1
    now[0] = 31.0
    store.value = None
    assert resource.answer() == {"open": None, "empty": True} and store.reads == 2
