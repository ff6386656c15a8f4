"""The OpenAPI document matches the code: routes and methods both ways, enums, examples, and
real answers of the app (every documented status, each validated against its schema)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from falcon import inspect as falcon_inspect
from falcon import testing
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from shared.config.categories import ALL, CATEGORIES, CATEGORY_IDS
from shared.config.settings import Settings
from shared.geo import gridcodec
from shared.geo.tiles import STORED, WINDOWS, Pyramid, tile_bounds
from shared.model.report import SUBMISSION_SCHEMA, Report
from web.app import create_app
from web.enqueue import QueueUnavailable
from web.errors import error_body
from web.grids import BlobCache, GridReader
from web.openapi import OPENAPI_PATH, build_document
from web.ratelimit import Buckets

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STATUS = {
    "at": "2026-11-27T12:00:00.000+00:00",
    "unavailable": ["dlq"],
    "queue": {"visible": 3, "in_flight": 1, "delayed": 0},
    "dlq": None,
    "last_computed_at": "2026-11-27T11:59:58.120+00:00",
    "last_computed_age_s": 1.9,
    "dirty_partitions": 0,
    "freshness": {"p50_ms": 850.0, "p95_ms": 1900.0, "samples": 12},
}
API = "/api/safetyheatmap"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class FakeGrids:
    def __init__(self) -> None:
        self.items: dict[str, tuple[bytes, str]] = {}

    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return {k: self.items[k] for k in keys if k in self.items}


class FakeQueue:
    def __init__(self) -> None:
        self.down = False

    def __call__(self, report: Report, request_id: str) -> None:
        if self.down:
            raise QueueUnavailable("down")


class App:
    def __init__(self, tmp_path: Path) -> None:
        # A small cell cap keeps the zoom-less heatmap answer (and its validation) quick.
        self.settings = Settings(frontend_dir=str(tmp_path), max_grid_cells=64 * 64)
        self.grids = FakeGrids()
        self.queue = FakeQueue()
        self.ready = {"queue": lambda: None}
        self.limiter = Buckets(per_minute=60, burst=1000)
        reader = GridReader(BlobCache(self.grids, 0.0, 16), Pyramid(200, 16))  # type: ignore[arg-type]
        self.app = create_app(
            self.settings,
            self.queue,
            reader,
            self.ready,
            lambda: NOW,
            limiter=self.limiter,
            status=lambda: STATUS,
        )
        self.client = testing.TestClient(self.app)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    yield App(tmp_path)


@pytest.fixture
def doc(app: App) -> dict[str, Any]:
    resp = app.client.simulate_get(OPENAPI_PATH)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    served: dict[str, Any] = resp.json
    return served


def _inline(node: Any, doc: dict[str, Any]) -> Any:
    """Replace local $refs by what they point at (the document has no cycles)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline(target, doc)
        return {k: _inline(v, doc) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, doc) for v in node]
    return node


def _validate(instance: Any, schema: dict[str, Any], doc: dict[str, Any]) -> None:
    full = _inline(schema, doc)
    Draft202012Validator.check_schema(full)
    validator = Draft202012Validator(full, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=str)
    assert not errors, f"{instance!r}: {errors[0].message}"


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


# --- the document itself -------------------------------------------------------------------------
def test_is_a_valid_openapi_31_document(doc: dict[str, Any], app: App) -> None:
    assert doc["openapi"].startswith("3.1")
    validate_spec(copy.deepcopy(doc))
    assert doc == json.loads(json.dumps(build_document(app.settings)))


def test_every_route_is_documented_with_its_methods_and_nothing_else(
    doc: dict[str, Any], app: App
) -> None:
    in_app = {}
    for route in falcon_inspect.inspect_routes(app.app.inner):
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        in_app[path] = {m.method.lower() for m in route.methods if not m.internal}
    documented = {
        path: {m for m in item if m in HTTP_METHODS} for path, item in doc["paths"].items()
    }
    assert documented == in_app


def test_schemas_are_the_ones_the_code_uses(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["Submission"] == json.loads(json.dumps(SUBMISSION_SCHEMA))
    assert schemas["Submission"]["properties"]["category"]["enum"] == sorted(CATEGORY_IDS)
    assert schemas["Category"]["properties"]["id"]["enum"] == [cid for cid, _ in CATEGORIES]
    assert set(schemas["Heatmap"]["properties"]["category"]["enum"]) == CATEGORY_IDS | {ALL}
    assert schemas["Heatmap"]["properties"]["window"]["enum"] == list(WINDOWS)
    for _, _, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["name"] == "category":
                assert set(param["schema"]["enum"]) == CATEGORY_IDS | {ALL}
            if param["name"] == "window":
                assert param["schema"]["enum"] == list(WINDOWS)
    _validate(error_body("x", "y", "lat"), schemas["Error"], doc)
    _validate(error_body("x", "y", None), schemas["Error"], doc)


def test_every_example_validates_against_its_schema(doc: dict[str, Any]) -> None:
    seen = 0
    for _, _, op in _operations(doc):
        bodies = [op.get("requestBody", {}), *op["responses"].values()]
        for part in bodies:
            for media in part.get("content", {}).values():
                if "example" in media:
                    _validate(media["example"], media["schema"], doc)
                    seen += 1
        for param in op.get("parameters", []):
            if "example" in param:
                _validate(param["example"], param["schema"], doc)
                seen += 1
    assert seen >= 15


def test_the_status_route_is_documented_only_where_it_is_served(tmp_path: Path) -> None:
    assert f"{API}/status" in build_document(Settings())["paths"]
    assert f"{API}/status" not in build_document(Settings(), status=False)["paths"]
    bare = create_app(
        Settings(frontend_dir=str(tmp_path)),
        FakeQueue(),
        GridReader(BlobCache(FakeGrids(), 0.0, 1), Pyramid(200, 16)),  # type: ignore[arg-type]
        {},
        lambda: NOW,
    )
    served = testing.TestClient(bare).simulate_get(OPENAPI_PATH).json
    routes = {r.path for r in falcon_inspect.inspect_routes(bare.inner)}
    assert set(served["paths"]) == {re.sub(r"\{(\w+):[^}]*\}", r"{\1}", p) for p in routes}


def test_settings_flow_into_the_document() -> None:
    doc = build_document(Settings(max_zoom=12, max_body_bytes=4096, rate_limit_per_minute=0))
    get = doc["paths"][f"{API}/heatmap/get"]["get"]
    zoom = next(p for p in get["parameters"] if p["name"] == "zoom")
    assert zoom["schema"]["maximum"] == 12
    add = doc["paths"][f"{API}/report/add"]["post"]
    assert "4096 bytes" in add["requestBody"]["description"]
    assert "not rate limited" in add["description"]


# --- real answers against the document ----------------------------------------------------------
def _store_tile(grids: FakeGrids, z: int, x: int, y: int, value: float) -> None:
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = value
    grids.items[f"d#all|all#{z}/{x}/{y}"] = (
        gridcodec.encode_density(grid),
        "2026-11-27T11:59:00+00:00",
    )


def test_real_answers_match_the_document_for_every_documented_status(
    app: App, doc: dict[str, Any], tmp_path: Path
) -> None:
    client = app.client
    exercised: set[tuple[str, str, str]] = set()

    def check(path: str, method: str, resp: testing.Result) -> testing.Result:
        op = doc["paths"][path][method]
        status = str(resp.status_code)
        assert status in op["responses"], f"{method} {path}: undocumented {status}"
        answer = op["responses"][status]
        content = answer.get("content", {})
        if content:
            media_type = resp.headers["Content-Type"].split(";")[0]
            assert media_type in content, f"{method} {path} {status}: {media_type}"
            if media_type == "application/json":
                _validate(resp.json, content[media_type]["schema"], doc)
        else:
            assert not resp.content
        for name in answer.get("headers", {}):
            if name != "ETag":
                assert name in resp.headers, f"{method} {path} {status}: no {name}"
        exercised.add((path, method, status))
        return resp

    add = f"{API}/report/add"
    example = doc["paths"][add]["post"]["requestBody"]["content"]["application/json"]["example"]
    json_headers = {"Content-Type": "application/json"}

    def post(body: str, headers: dict[str, str] | None = None) -> testing.Result:
        return check(
            add, "post", client.simulate_post(add, body=body, headers=headers or json_headers)
        )

    assert post(json.dumps(example)).status_code == 202
    post("{")
    post(json.dumps({**example, "description": "x" * 9000}))
    post(json.dumps(example), {"Content-Type": "text/plain"})
    post(json.dumps({**example, "lat": 91}))
    post(json.dumps(example), {**json_headers, "Idempotency-Key": "\t"})
    app.queue.down = True
    post(json.dumps(example))
    app.queue.down = False
    tight = Buckets(per_minute=1, burst=1)
    limited = create_app(
        app.settings,
        app.queue,
        GridReader(BlobCache(app.grids, 0.0, 16), Pyramid(200, 16)),  # type: ignore[arg-type]
        {},
        lambda: NOW,
        limiter=tight,
    )
    for _ in range(2):
        check(
            add,
            "post",
            testing.TestClient(limited).simulate_post(
                add, body=json.dumps(example), headers=json_headers
            ),
        )

    heat = f"{API}/heatmap/get"
    _store_tile(app.grids, 2, 1, 1, 5.0)
    w, s, _, _ = tile_bounds(2, 1, 1)
    bbox = f"{w + 1},{s + 1},{w + 9},{s + 9}"  # a corner of the stored tile: ~25 x 25 cells
    ok = check(heat, "get", client.simulate_get(heat, params={"bbox": bbox, "zoom": "2"}))
    etag = ok.headers["ETag"]
    check(heat, "get", client.simulate_get(heat, params={"bbox": bbox}))
    check(heat, "get", client.simulate_get(heat, params={"bbox": bbox, "category": "theft"}))
    check(
        heat,
        "get",
        client.simulate_get(
            heat, params={"bbox": bbox, "zoom": "2"}, headers={"If-None-Match": etag}
        ),
    )
    check(heat, "get", client.simulate_get(heat, params={"bbox": "1,2,3"}))
    night = check(heat, "get", client.simulate_get(heat, params={"bbox": bbox, "light": "night"}))
    assert night.json["field"] == "light"
    dark = check(heat, "get", client.simulate_get(heat, params={"bbox": bbox, "light": "dark"}))
    assert (dark.json["light"], dark.json["days"]) == ("dark", "any")

    tiles = f"{API}/heatmap/tiles/{{z}}/{{x}}/{{y}}.png"
    tile = check(tiles, "get", client.simulate_get(f"{API}/heatmap/tiles/2/1/1.png"))
    assert tile.content.startswith(b"\x89PNG")
    check(
        tiles,
        "get",
        client.simulate_get(
            f"{API}/heatmap/tiles/2/1/1.png", headers={"If-None-Match": tile.headers["ETag"]}
        ),
    )
    check(tiles, "get", client.simulate_get(f"{API}/heatmap/tiles/2/1/1.png?window=2d"))
    check(tiles, "get", client.simulate_get(f"{API}/heatmap/tiles/2/9/1.png"))
    week = check(tiles, "get", client.simulate_get(f"{API}/heatmap/tiles/2/1/1.png?days=week"))
    assert week.json["field"] == "days"

    exp = f"{API}/heatmap/export"
    for fmt in ("geojson", "csv", "geotiff"):
        got = check(exp, "get", client.simulate_get(exp, params={"bbox": bbox, "format": fmt}))
    check(exp, "get", client.simulate_get(exp, params={"bbox": bbox, "format": "kml"}))
    check(exp, "get", client.simulate_get(exp, params={"bbox": "1,2", "format": "csv"}))
    headers = {"If-None-Match": got.headers["ETag"]}
    check(
        exp,
        "get",
        client.simulate_get(exp, params={"bbox": bbox, "format": "geotiff"}, headers=headers),
    )

    for path in (
        f"{API}/categories",
        f"{API}/config",
        f"{API}/summary",
        f"{API}/status",
        OPENAPI_PATH,
        "/healthz",
        "/readyz",
    ):
        check(path, "get", client.simulate_get(path))

    def broken() -> None:
        raise RuntimeError("down")

    app.ready["queue"] = broken
    check("/readyz", "get", client.simulate_get("/readyz"))

    documented = {
        (path, method, status)
        for path, method, op in _operations(doc)
        for status in op["responses"]
    }
    assert documented == exercised
