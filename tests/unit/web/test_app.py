"""The Falcon app with injected fakes: every edge rule, caching and error shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from falcon import testing

from shared.config.settings import Settings
from shared.geo import gridcodec
from shared.geo.tiles import STORED, Pyramid, tile_bounds
from shared.model.report import Report
from web.app import create_app
from web.enqueue import QueueUnavailable
from web.grids import BlobCache, GridReader, RecentAnswers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ADD = "/api/safetyheatmap/report/add"
GOOD = {"lat": 51.5, "lon": -0.12, "category": "harassment"}


class FakeGrids:
    def __init__(self) -> None:
        self.items: dict[str, tuple[bytes, str]] = {}
        self.calls = 0

    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        self.calls += 1
        return {k: self.items[k] for k in keys if k in self.items}


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[Report, str]] = []
        self.down = False

    def __call__(self, report: Report, request_id: str) -> None:
        if self.down:
            raise QueueUnavailable("down")
        self.sent.append((report, request_id))


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "index.html").write_text("<!doctype html><title>SafetyHeatmap</title>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)")
    settings = Settings(frontend_dir=str(tmp_path), cache_max_age=7)
    grids = FakeGrids()
    queue = FakeQueue()
    reader = GridReader(BlobCache(grids, ttl=60, size=16), Pyramid(200, 16))  # type: ignore[arg-type]
    app = create_app(settings, queue, reader, {"queue": lambda: None}, lambda: NOW)
    return {"client": testing.TestClient(app), "grids": grids, "queue": queue}


def post(client: testing.TestClient, body: Any, **headers: str) -> testing.Result:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.simulate_post(
        ADD, body=data, headers={"Content-Type": "application/json", **headers}
    )


def test_accepts_and_enqueues_before_answering(parts: dict[str, Any]) -> None:
    resp = post(parts["client"], GOOD)
    assert resp.status_code == 202
    assert resp.json["status"] == "queued"
    ((report, request_id),) = parts["queue"].sent
    assert report.id == resp.json["id"] and request_id == resp.headers["X-Request-Id"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_acknowledgement_is_the_json_of_its_fields(parts: dict[str, Any]) -> None:
    resp = post(parts["client"], GOOD)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.content == json.dumps({"id": resp.json["id"], "status": "queued"}).encode()


def test_idempotency_key_gives_the_same_id(parts: dict[str, Any]) -> None:
    a = post(parts["client"], GOOD, **{"Idempotency-Key": "k-1"})
    b = post(parts["client"], GOOD, **{"Idempotency-Key": "k-1"})
    assert a.json["id"] == b.json["id"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, None),
        (b"[1, NaN]", "application/json", 400, None),
        (b"\xff\xfe", "application/json", 400, None),
        (
            b'{"lat": 1, "lon": 2, "category": "theft", "description": "a\\ud800"}',
            "application/json",
            400,
            None,
        ),  # a lone surrogate, escaped: not text
        (json.dumps(GOOD), "text/plain", 415, None),
        (json.dumps(GOOD), "", 415, None),
        (json.dumps({**GOOD, "lat": 91}), "application/json", 422, "lat"),
        (json.dumps({**GOOD, "category": "x"}), "application/json", 422, "category"),
        (json.dumps({**GOOD, "extra": 1}), "application/json", 422, "extra"),
        (json.dumps([GOOD]), "application/json", 422, None),
    ],
)
def test_bad_input_gets_a_clear_error(
    parts: dict[str, Any], body: bytes | str, content_type: str, status: int, field: str | None
) -> None:
    resp = parts["client"].simulate_post(ADD, body=body, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert resp.json["field"] == field
    assert resp.json["error"] and resp.json["message"]
    assert not parts["queue"].sent


def test_oversized_body_is_413(parts: dict[str, Any]) -> None:
    resp = post(parts["client"], {**GOOD, "description": "x" * 9000})
    assert resp.status_code == 413
    assert resp.json["error"] == "body_too_large"


def test_queue_down_is_503_with_retry_after_and_no_ack(parts: dict[str, Any]) -> None:
    parts["queue"].down = True
    resp = post(parts["client"], GOOD)
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert "id" not in resp.json


def test_categories_and_config(parts: dict[str, Any]) -> None:
    cats = parts["client"].simulate_get("/api/safetyheatmap/categories")
    assert {"id": "harassment", "label": "Harassment"} in cats.json
    assert cats.headers["Cache-Control"] == "public, max-age=7"
    cfg = parts["client"].simulate_get("/api/safetyheatmap/config").json
    assert cfg["windows"] == ["7d", "30d", "365d", "all"]


def _store_tile(grids: FakeGrids, layer: str, z: int, x: int, y: int, value: float) -> None:
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = value
    grids.items[f"d#{layer}#{z}/{x}/{y}"] = (
        gridcodec.encode_density(grid),
        "2026-11-27T11:59:00+00:00",
    )


def test_heatmap_get_shape_orientation_etag_and_304(parts: dict[str, Any]) -> None:
    client = parts["client"]
    _store_tile(parts["grids"], "all|all", 2, 1, 1, 5.0)
    w, s, e, n = tile_bounds(2, 1, 1)
    bbox = f"{w + 1e-6},{s + 1e-6},{e - 1e-6},{n - 1e-6}"
    resp = client.simulate_get("/api/safetyheatmap/heatmap/get", params={"bbox": bbox, "zoom": "2"})
    assert resp.status_code == 200
    body = resp.json
    assert body["zoom"] == 2 and body["width"] == 256 and body["height"] == 256
    assert len(body["values"]) == body["height"] and len(body["values"][0]) == body["width"]
    assert body["values"][0][0] == 5.0 and body["computed_at"].startswith("2026-11-27")
    assert body["unit"] == "reports/km2" and body["category"] == "all" and body["window"] == "all"
    assert resp.headers["Cache-Control"] == "public, max-age=7"
    again = client.simulate_get(
        "/api/safetyheatmap/heatmap/get",
        params={"bbox": bbox, "zoom": "2"},
        headers={"If-None-Match": resp.headers["ETag"]},
    )
    assert again.status_code == 304 and not again.content


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "bbox"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "10,0,5,1"}, "bbox"),
        ({"bbox": "0,0,1,nan"}, "bbox"),
        ({"bbox": "0,0,1,1", "zoom": "x"}, "zoom"),
        ({"bbox": "0,0,1,1", "zoom": "30"}, "zoom"),
        ({"bbox": "-180,-85,180,85", "zoom": "12"}, "bbox"),
        ({"bbox": "0,0,1,1", "category": "nope"}, "category"),
        ({"bbox": "0,0,1,1", "window": "2d"}, "window"),
    ],
)
def test_heatmap_bad_queries_are_400_naming_the_parameter(
    parts: dict[str, Any], params: dict[str, str], field: str
) -> None:
    resp = parts["client"].simulate_get("/api/safetyheatmap/heatmap/get", params=params)
    assert resp.status_code == 400
    assert resp.json["field"] == field
    assert resp.headers["Cache-Control"] == "no-store"


def test_heatmap_without_zoom_picks_the_finest_that_fits(parts: dict[str, Any]) -> None:
    body = (
        parts["client"]
        .simulate_get("/api/safetyheatmap/heatmap/get", params={"bbox": "-0.2,51.4,0.0,51.6"})
        .json
    )
    assert body["width"] * body["height"] <= 512 * 512
    assert body["zoom"] >= 10


def test_tiles_png_and_shared_empty_tile(parts: dict[str, Any]) -> None:
    client = parts["client"]
    _store_tile(parts["grids"], "all|all", 3, 2, 2, 50.0)
    full = client.simulate_get("/api/safetyheatmap/heatmap/tiles/3/2/2.png")
    empty = client.simulate_get("/api/safetyheatmap/heatmap/tiles/3/5/5.png")
    assert full.status_code == empty.status_code == 200
    assert full.headers["Content-Type"] == "image/png"
    assert full.content.startswith(b"\x89PNG") and full.content != empty.content
    assert client.simulate_get("/api/safetyheatmap/heatmap/tiles/3/9/9.png").status_code == 404
    assert client.simulate_get("/api/safetyheatmap/heatmap/tiles/3/1/x.png").status_code == 404
    cached = client.simulate_get(
        "/api/safetyheatmap/heatmap/tiles/3/2/2.png",
        headers={"If-None-Match": full.headers["ETag"]},
    )
    assert cached.status_code == 304


def test_reads_are_cached_in_process(parts: dict[str, Any]) -> None:
    client = parts["client"]
    for _ in range(3):
        client.simulate_get("/api/safetyheatmap/heatmap/tiles/4/2/2.png")
    assert parts["grids"].calls == 1


def test_health_and_static_and_security_headers(parts: dict[str, Any]) -> None:
    client = parts["client"]
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").status_code == 200
    page = client.simulate_get("/")
    assert page.status_code == 200 and b"SafetyHeatmap" in page.content
    assert page.headers["Cache-Control"] == "no-cache"
    asset = client.simulate_get("/assets/app-1234.js")
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert "max-age" in asset.headers["Cache-Control"]
    assert client.simulate_get("/../../etc/passwd").status_code == 404
    assert client.simulate_get("/missing.js").status_code == 404
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.simulate_get("/api/safetyheatmap/nothing")
    assert missing.status_code == 404 and missing.json["error"]


def test_not_ready_is_503(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("secret internal detail")

    app = create_app(
        Settings(frontend_dir=str(tmp_path)),
        FakeQueue(),
        GridReader(BlobCache(FakeGrids(), 1, 1), Pyramid(200, 16)),  # type: ignore[arg-type]
        {"queue": broken},
        lambda: NOW,
    )
    resp = testing.TestClient(app).simulate_get("/readyz")
    assert resp.status_code == 503
    assert "secret" not in resp.text


def test_etag_follows_the_stored_tiles_version(tmp_path: Path) -> None:
    grids = FakeGrids()
    reader = GridReader(BlobCache(grids, ttl=0.0, size=16), Pyramid(200, 16))  # type: ignore[arg-type]
    settings = Settings(frontend_dir=str(tmp_path), grid_cache_ttl=0.0)
    app = create_app(settings, FakeQueue(), reader, {}, lambda: NOW)
    client = testing.TestClient(app)
    url = "/api/safetyheatmap/heatmap/tiles/3/2/2.png"
    _store_tile(grids, "all|all", 3, 2, 2, 50.0)
    first = client.simulate_get(url)
    assert client.simulate_get(url).headers["ETag"] == first.headers["ETag"]
    assert (
        client.simulate_get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code
        == 304
    )
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = 80.0
    grids.items["d#all|all#3/2/2"] = (gridcodec.encode_density(grid), "2026-11-27T12:00:01+00:00")
    changed = client.simulate_get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]


def test_a_repeated_read_is_answered_from_the_last_answer_until_the_ttl(tmp_path: Path) -> None:
    grids = FakeGrids()
    reader = GridReader(BlobCache(grids, ttl=0.0, size=16), Pyramid(200, 16))  # type: ignore[arg-type]
    now = [100.0]
    recent = RecentAnswers(ttl=0.5, clock=lambda: now[0])
    settings = Settings(frontend_dir=str(tmp_path))
    app = create_app(settings, FakeQueue(), reader, {}, lambda: NOW, recent=recent)
    client = testing.TestClient(app)
    _store_tile(grids, "all|all", 3, 2, 2, 50.0)
    urls = [
        "/api/safetyheatmap/heatmap/tiles/3/2/2.png",
        "/api/safetyheatmap/heatmap/get?bbox=-80,45,-50,60&zoom=3",
    ]
    first = {u: client.simulate_get(u) for u in urls}
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = 80.0
    grids.items["d#all|all#3/2/2"] = (gridcodec.encode_density(grid), "2026-11-27T12:00:01+00:00")
    for u in urls:
        again = client.simulate_get(u)  # within the TTL: the same answer, no reads
        assert (
            again.headers["ETag"] == first[u].headers["ETag"] and again.content == first[u].content
        )
        tag = {"If-None-Match": first[u].headers["ETag"]}
        assert client.simulate_get(u, headers=tag).status_code == 304
    now[0] += 0.6
    for u in urls:
        later = client.simulate_get(u, headers={"If-None-Match": first[u].headers["ETag"]})
        assert later.status_code == 200 and later.headers["ETag"] != first[u].headers["ETag"]
        assert later.headers["Cache-Control"] == first[u].headers["Cache-Control"]


def test_an_answer_is_kept_only_until_the_oldest_tile_behind_it_expires(tmp_path: Path) -> None:
    """Both caches together are no staler than the tile cache's TTL: an answer built from a
    copy 0.3 s old is kept 0.2 s more, not a whole TTL (it was, so it could be 2 x TTL old)."""
    grids = FakeGrids()
    now = [100.0]
    reader = GridReader(BlobCache(grids, ttl=0.5, size=16, clock=lambda: now[0]), Pyramid(200, 16))  # type: ignore[arg-type]
    recent = RecentAnswers(ttl=0.5, clock=lambda: now[0])
    settings = Settings(frontend_dir=str(tmp_path))
    app = create_app(settings, FakeQueue(), reader, {}, lambda: NOW, recent=recent)
    client = testing.TestClient(app)
    _store_tile(grids, "all|all", 3, 2, 2, 50.0)
    client.simulate_get("/api/safetyheatmap/heatmap/tiles/3/2/2.png")  # the tile cached at 100
    now[0] += 0.3
    url = "/api/safetyheatmap/heatmap/get?bbox=-80,45,-50,60&zoom=3"
    first = client.simulate_get(url)  # made from the 0.3 s old copy
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = 80.0
    grids.items["d#all|all#3/2/2"] = (gridcodec.encode_density(grid), "2026-11-27T12:00:01+00:00")
    now[0] += 0.1
    assert client.simulate_get(url).headers["ETag"] == first.headers["ETag"]  # 0.4 s: cached
    now[0] += 0.15
    assert client.simulate_get(url).headers["ETag"] != first.headers["ETag"]  # 0.55 s: fresh


def test_a_repeated_read_shows_rewritten_tiles_once_the_beacon_says_so(tmp_path: Path) -> None:
    grids = FakeGrids()
    now = [100.0]
    beacon = ["w1"]
    cache = BlobCache(
        grids,  # type: ignore[arg-type]
        ttl=2.0,
        size=16,
        clock=lambda: now[0],
        beacon=lambda: beacon[0],
        check_every=0.1,
    )
    reader = GridReader(cache, Pyramid(200, 16))
    recent = RecentAnswers(ttl=2.0, clock=lambda: now[0], current=reader.current)
    settings = Settings(frontend_dir=str(tmp_path))
    app = create_app(settings, FakeQueue(), reader, {}, lambda: NOW, recent=recent)
    client = testing.TestClient(app)
    _store_tile(grids, "all|all", 3, 2, 2, 50.0)
    url = "/api/safetyheatmap/heatmap/get?bbox=-80,45,-50,60&zoom=3"
    first = client.simulate_get(url)
    now[0] += 1.0
    assert client.simulate_get(url).headers["ETag"] == first.headers["ETag"]  # nothing new
    assert grids.calls == 1
    grid = np.zeros((STORED, STORED))
    grid[2:-2, 2:-2] = 80.0
    grids.items["d#all|all#3/2/2"] = (gridcodec.encode_density(grid), "2026-11-27T12:00:01+00:00")
    beacon[0] = "w2"
    now[0] += 0.15  # well within the TTL, past one look at the beacon
    assert client.simulate_get(url).headers["ETag"] != first.headers["ETag"]
