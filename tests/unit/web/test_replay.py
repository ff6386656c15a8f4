"""Repeated heatmap reads answered in front of Falcon: the same answer as the app's own."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

import web.middleware
import web.replay
from shared.config.settings import Settings
from shared.geo.tiles import STORED, Pyramid
from tests.unit.web.test_app import FakeGrids, FakeQueue, _store_tile
from web.app import create_app
from web.grids import Answer, BlobCache, GridReader, RecentAnswers
from web.replay import Replay

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TILE = "/api/safetyheatmap/heatmap/tiles/3/2/2.png"
GET = "/api/safetyheatmap/heatmap/get?bbox=-80,45,-50,60&zoom=3"


class World:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> None:
        self.grids = FakeGrids()
        self.now = [100.0]
        cache = BlobCache(self.grids, ttl=2.0, size=16, clock=lambda: self.now[0])  # type: ignore[arg-type]
        reader = GridReader(cache, Pyramid(200, 16))
        recent = RecentAnswers(ttl=2.0, clock=lambda: self.now[0], current=reader.current)
        s = Settings(frontend_dir=str(tmp_path), **settings)
        self.app: Replay = create_app(s, FakeQueue(), reader, {}, lambda: NOW, recent=recent)
        self.framework_calls = 0
        inner = self.app.inner

        def counted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            self.framework_calls += 1
            return inner(environ, start_response)

        monkeypatch.setattr(self.app, "_app", counted)
        self.client = testing.TestClient(self.app)
        self.lines: list[tuple[Any, ...]] = []
        for module in (web.middleware, web.replay):
            monkeypatch.setattr(module, "log_request", lambda *a: self.lines.append(a))
        _store_tile(self.grids, "all|all", 3, 2, 2, 50.0)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


def same(a: testing.Result, b: testing.Result) -> bool:
    def headers(r: testing.Result) -> dict[str, str]:
        return {k.lower(): v for k, v in r.headers.items() if k.lower() != "x-request-id"}

    return a.status == b.status and headers(a) == headers(b) and a.content == b.content


@pytest.mark.parametrize("url", [TILE, GET])
def test_a_repeated_read_is_replayed_exactly_as_the_app_answered_it(world: World, url: str) -> None:
    first = world.client.simulate_get(url)
    assert first.status_code == 200 and world.framework_calls == 1
    tag = {"If-None-Match": first.headers["ETag"]}
    first_304 = world.client.simulate_get(url, headers=tag)
    assert first_304.status_code == 304 and world.framework_calls == 2
    for _ in range(3):
        assert same(world.client.simulate_get(url), first)
        assert same(world.client.simulate_get(url, headers=tag), first_304)
    assert world.framework_calls == 2  # the six repeats never reached Falcon
    weak = world.client.simulate_get(url, headers={"If-None-Match": "W/" + first.headers["ETag"]})
    assert weak.status_code == 304 and world.framework_calls == 2


def test_a_replayed_answer_carries_its_own_request_id_and_access_line(world: World) -> None:
    world.client.simulate_get(TILE)
    world.lines.clear()
    mine = world.client.simulate_get(TILE, headers={"X-Request-Id": "trace-1"})
    a, b = world.client.simulate_get(TILE), world.client.simulate_get(TILE)
    assert world.framework_calls == 1
    assert mine.headers["X-Request-Id"] == "trace-1"
    assert a.headers["X-Request-Id"] != b.headers["X-Request-Id"]
    assert [(m, p, s, rid) for m, p, s, _, rid in world.lines] == [
        ("GET", TILE, 200, "trace-1"),
        ("GET", TILE, 200, a.headers["X-Request-Id"]),
        ("GET", TILE, 200, b.headers["X-Request-Id"]),
    ]


def test_a_changed_answer_is_not_replayed(world: World) -> None:
    first = world.client.simulate_get(GET)
    _store_tile(world.grids, "all|all", 3, 2, 2, 80.0)
    world.grids.items["d#all|all#3/2/2"] = (
        world.grids.items["d#all|all#3/2/2"][0],
        "2026-11-27T12:00:01+00:00",
    )
    assert world.client.simulate_get(GET).headers["ETag"] == first.headers["ETag"]  # cached
    world.now[0] += 2.1  # the tile copy behind the answer has expired
    later = world.client.simulate_get(GET, headers={"If-None-Match": first.headers["ETag"]})
    assert later.status_code == 200 and later.headers["ETag"] != first.headers["ETag"]
    assert world.framework_calls == 2


def test_errors_and_other_methods_always_reach_the_app(world: World) -> None:
    bad = f"/api/safetyheatmap/heatmap/tiles/3/2/{STORED}x.png"
    for _ in range(2):
        assert world.client.simulate_get(bad).status_code in (400, 404)
        assert world.client.simulate_get(GET + "&category=nope").status_code == 400
    world.client.simulate_get(TILE)
    world.client.simulate_head(TILE)
    assert world.framework_calls == 6


def test_each_origin_gets_the_cors_answer_the_app_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, monkeypatch, cors_origins=("https://a.example",))
    for _ in range(2):
        allowed = world.client.simulate_get(TILE, headers={"Origin": "https://a.example"})
        other = world.client.simulate_get(TILE, headers={"Origin": "https://b.example"})
        plain = world.client.simulate_get(TILE)
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://a.example"
        assert "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Origin" not in plain.headers
    assert world.framework_calls == 3  # one per origin, then replayed


def test_recent_answers_hold_bounded_bytes_and_drop_expired_ones() -> None:
    now = [0.0]
    recent = RecentAnswers(ttl=2.0, clock=lambda: now[0], max_bytes=3000)
    for i in range(5):
        recent.put(f"/a{i}", Answer(f'"{i}"', b"x" * 1000, "application/json"))
    assert recent.held_bytes == 3000  # the two oldest went
    assert recent.get("/a0") is None and recent.get("/a4") is not None
    now[0] = 2.5  # all expired: the next answer pushes them out, not 4,096 later ones
    recent.put("/b", Answer('"b"', b"y" * 10, "application/json"))
    assert recent.held_bytes == 10


def test_a_replay_does_not_keep_an_answer_alive(world: World) -> None:
    world.client.simulate_get(GET)
    world.client.simulate_get(GET)  # replayed: recorded with its answer
    world.now[0] += 2.5
    world.client.simulate_get(TILE)  # a new answer pushes out the expired one
    gc.collect()
    assert [k for k, e in world.app._entries.items() if e.answer() is None] == [
        ("/api/safetyheatmap/heatmap/get", "bbox=-80,45,-50,60&zoom=3", None)
    ]
