"""Token buckets: the maths, who the client is, sharing across processes, and the 429."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from shared.config.settings import Settings, SettingsError
from shared.geo.tiles import Pyramid
from web import ratelimit
from web.app import create_app
from web.grids import BlobCache, GridReader
from web.ratelimit import ClientAddress, Decision, RateLimitFileError, SharedBuckets, refill, take

ADD = "/api/safetyheatmap/report/add"
GOOD = {"lat": 51.5, "lon": -0.12, "category": "harassment"}
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return tmp_path / "rl.bin"


@pytest.fixture
def buckets(table: Path, clock: Clock) -> Iterator[SharedBuckets]:
    b = SharedBuckets(table, per_minute=60, burst=3, clock=clock)
    yield b
    b.close()


# --- bucket maths ------------------------------------------------------------------------------
def test_refill_is_linear_capped_and_ignores_a_clock_going_back() -> None:
    assert refill(0.0, 10.0, 12.0, 0.5, 10) == 1.0
    assert refill(9.5, 10.0, 100.0, 0.5, 10) == 10.0
    assert refill(2.0, 10.0, 5.0, 0.5, 10) == 2.0


def test_take_spends_one_token_or_says_how_long_to_wait() -> None:
    stored, ok = take(1.0, 0.0, 0.0, 0.5, 10)
    assert ok.allowed and stored == 0.0 and ok.retry_after == 0.0
    stored, denied = take(0.25, 0.0, 0.0, 0.5, 10)
    assert not denied.allowed and stored == 0.25
    assert denied.retry_after == pytest.approx(1.5)
    assert denied.retry_after_header == 2


def test_retry_after_header_is_whole_seconds_and_never_zero() -> None:
    assert Decision(False, 0.0, 0.01).retry_after_header == 1
    assert Decision(False, 0.0, 2.0).retry_after_header == 2
    assert Decision(False, 0.0, 2.0001).retry_after_header == 3


def test_burst_then_steady_rate(buckets: SharedBuckets, clock: Clock) -> None:
    assert [buckets.take("198.51.100.1").allowed for _ in range(4)] == [True, True, True, False]
    denied = buckets.take("198.51.100.1")
    assert denied.retry_after == pytest.approx(1.0)  # 60/min: one token a second
    clock.t += 0.5
    assert not buckets.take("198.51.100.1").allowed
    clock.t += 0.5
    assert buckets.take("198.51.100.1").allowed
    assert not buckets.take("198.51.100.1").allowed
    clock.t += 3600
    assert [buckets.take("198.51.100.1").allowed for _ in range(4)] == [True, True, True, False]


def test_clients_have_their_own_buckets(buckets: SharedBuckets) -> None:
    for _ in range(3):
        assert buckets.take("198.51.100.1").allowed
    assert not buckets.take("198.51.100.1").allowed
    assert buckets.take("198.51.100.2").allowed


def test_state_survives_reopening_the_file(table: Path, clock: Clock) -> None:
    first = SharedBuckets(table, per_minute=60, burst=2, clock=clock)
    assert first.take("c").allowed and first.take("c").allowed
    first.close()
    again = SharedBuckets(table, per_minute=60, burst=2, clock=clock)
    assert not again.take("c").allowed
    again.close()


def test_a_crowded_set_evicts_the_fullest_bucket_and_keeps_busy_ones(
    table: Path, clock: Clock
) -> None:
    # One set of four ways: every client collides. Three clients drain their buckets, a fourth
    # is idle (full); newcomers take the idle client's slot, the drained ones stay limited.
    b = SharedBuckets(table, per_minute=60, burst=2, sets=1, ways=4, clock=clock)
    busy = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    for client in busy:
        assert b.take(client).allowed and b.take(client).allowed
    assert b.take("10.0.0.4").allowed  # 1 token left: the fullest, so the first evicted
    for n in range(5, 20):
        assert b.take(f"10.0.0.{n}").allowed  # each newcomer starts with a full bucket
    for client in busy:
        assert not b.take(client).allowed, client
    b.close()


def test_with_more_busy_clients_than_ways_eviction_errs_towards_letting_through(
    table: Path, clock: Clock
) -> None:
    b = SharedBuckets(table, per_minute=60, burst=1, sets=1, ways=2, clock=clock)
    assert b.take("a").allowed and b.take("b").allowed
    assert b.take("c").allowed  # evicts a drained bucket: documented leniency
    b.close()


# --- the file ------------------------------------------------------------------------------------
def test_the_file_is_private_and_holds_no_address(buckets: SharedBuckets, table: Path) -> None:
    buckets.take("203.0.113.77")
    assert table.stat().st_mode & 0o777 == 0o600
    data = table.read_bytes()
    assert b"203.0.113.77" not in data and bytes([203, 0, 113, 77]) not in data


def test_refuses_a_file_others_can_write(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    path.write_bytes(b"")
    path.chmod(0o666)
    with pytest.raises(RateLimitFileError, match="0600"):
        SharedBuckets(path, per_minute=60, burst=3)


def test_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    target.chmod(0o600)
    (tmp_path / "rl.bin").symlink_to(target)
    with pytest.raises(RateLimitFileError):
        SharedBuckets(tmp_path / "rl.bin", per_minute=60, burst=3)


def test_a_foreign_or_resized_table_is_reset(table: Path, clock: Clock) -> None:
    table.write_bytes(b"not a table" * 10)
    table.chmod(0o600)
    b = SharedBuckets(table, per_minute=60, burst=1, sets=8, ways=2, clock=clock)
    assert b.take("x").allowed and not b.take("x").allowed
    b.close()
    resized = SharedBuckets(table, per_minute=60, burst=1, sets=16, ways=2, clock=clock)
    assert resized.take("x").allowed
    resized.close()


def test_a_configured_key_is_used_and_an_empty_one_is_generated_once(table: Path) -> None:
    a = SharedBuckets(table, per_minute=60, burst=1)
    b = SharedBuckets(table, per_minute=60, burst=1)
    keyed = SharedBuckets(table, per_minute=60, burst=1, key=b"deployment secret")
    assert a.key_fingerprint == b.key_fingerprint != keyed.key_fingerprint
    for x in (a, b, keyed):
        x.close()


# --- several processes --------------------------------------------------------------------------
def _worker(path: str, client: str, n: int, barrier: Any, results: Any) -> None:
    b = SharedBuckets(Path(path), per_minute=1, burst=20)
    barrier.wait(60)  # both processes have the file open: now race for the same bucket
    allowed = sum(b.take(client).allowed for _ in range(n))
    results.put((os.getpid(), allowed, b.key_fingerprint))
    b.close()


@pytest.mark.timeout(120)
def test_two_processes_share_one_bucket_and_one_key(table: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(table), "192.0.2.10", 30, barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():  # pragma: no cover - only when the test already failed
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    pids, allowed, keys = zip(*got, strict=True)
    assert len(set(pids)) == 2
    assert sum(allowed) == 20  # one bucket of 20 between 60 attempts (1/min refills ~nothing)
    assert len(set(keys)) == 1


def test_a_forked_child_reopens_the_file(buckets: SharedBuckets) -> None:
    buckets.take("p")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            ok = buckets.take("p").allowed
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert buckets.take("p").allowed  # parent: 3 - 1 (parent) - 1 (child) = 1 left
    assert not buckets.take("p").allowed


# --- who is the client ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "client"),
    [
        ((), "203.0.113.5", None, "203.0.113.5"),
        ((), "203.0.113.5", "198.51.100.9", "203.0.113.5"),  # untrusted peer: header ignored
        (("10.0.0.0/8",), "203.0.113.5", "198.51.100.9", "203.0.113.5"),
        (("10.0.0.0/8",), "10.1.2.3", "198.51.100.9", "198.51.100.9"),
        (("10.0.0.0/8",), "10.1.2.3", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # spoofed left
        (("10.0.0.0/8",), "10.1.2.3", "6.6.6.6, 198.51.100.9, 10.9.9.9", "198.51.100.9"),
        (("10.0.0.0/8",), "10.1.2.3", "10.5.5.5, 10.9.9.9", "10.5.5.5"),  # all trusted
        (("10.0.0.0/8",), "10.1.2.3", "", "10.1.2.3"),
        (("10.0.0.0/8",), "10.1.2.3", "6.6.6.6, garbage", "10.1.2.3"),
        (("10.0.0.0/8",), "10.1.2.3", "198.51.100.9:4711", "198.51.100.9"),
        (("10.0.0.0/8",), "10.1.2.3", "[2001:db8::1]:443", "2001:db8::/64"),
        (("10.0.0.7/8",), "10.1.2.3", "198.51.100.9", "198.51.100.9"),  # host bits allowed
        (("10.1.2.3",), "10.1.2.3", "198.51.100.9", "198.51.100.9"),  # a single address
        (("2001:db8:ffff::/48",), "2001:db8:ffff::1", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ((), "::ffff:198.51.100.9", None, "198.51.100.9"),
        ((), "2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::/64"),
        ((), "", None, "peer:"),
    ],
)
def test_client_address(trusted: tuple[str, ...], peer: str, xff: str | None, client: str) -> None:
    assert ClientAddress(trusted).resolve(peer, xff) == client


def test_settings_parse_and_check_the_new_fields() -> None:
    s = Settings.from_env(
        {
            "SAFETYHEATMAP_TRUSTED_PROXIES": "10.0.0.0/16, 2001:db8::/32",
            "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    assert s.trusted_proxies == ("10.0.0.0/16", "2001:db8::/32")
    assert ratelimit.from_settings(s) is None
    d = Settings()
    assert (d.rate_limit_per_minute, d.rate_limit_burst, d.trusted_proxies) == (30, 10, ())
    for env in (
        {"SAFETYHEATMAP_TRUSTED_PROXIES": "10.0.0.0/33"},
        {"SAFETYHEATMAP_TRUSTED_PROXIES": "api-gateway"},
        {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "-1"},
        {"SAFETYHEATMAP_RATE_LIMIT_BURST": "0"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_from_settings_uses_the_configured_file(tmp_path: Path) -> None:
    s = Settings(rate_limit_file=str(tmp_path / "t.bin"), port=4321)
    b = ratelimit.from_settings(s)
    assert b is not None and b.path == tmp_path / "t.bin"
    b.close()
    assert ratelimit.default_path(Settings(port=4321)).name == "safetyheatmap-ratelimit-4321.bin"


# --- through the app -----------------------------------------------------------------------------
class _Queue:
    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, report: object, request_id: str) -> None:
        self.sent += 1


class _Grids:
    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return {}


def _client(
    tmp_path: Path, limiter: SharedBuckets, **settings: Any
) -> tuple[testing.TestClient, _Queue]:
    queue = _Queue()
    reader = GridReader(BlobCache(_Grids(), 1, 8), Pyramid(200, 16))  # type: ignore[arg-type]
    app = create_app(
        Settings(frontend_dir=str(tmp_path), **settings),
        queue,
        reader,
        {},
        lambda: NOW,
        limiter=limiter,
    )
    return testing.TestClient(app), queue


def _post(client: testing.TestClient, **kwargs: Any) -> testing.Result:
    return client.simulate_post(
        ADD,
        body=json.dumps(GOOD),
        headers={"Content-Type": "application/json", **kwargs.pop("headers", {})},
        **kwargs,
    )


def test_429_with_retry_after_in_the_error_shape(tmp_path: Path, table: Path, clock: Clock) -> None:
    limiter = SharedBuckets(table, per_minute=30, burst=2, clock=clock)
    client, queue = _client(tmp_path, limiter)
    assert [_post(client).status_code for _ in range(2)] == [202, 202]
    resp = _post(client)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"  # 30/min: a token every 2 s
    assert resp.json == {
        "error": "rate_limited",
        "message": "too many reports from this address; retry after the given seconds",
        "field": None,
        "errors": [],
    }
    assert resp.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Request-Id"]
    assert queue.sent == 2
    # Invalid bodies cost a token too (the limit is checked before the body is read) ...
    assert client.simulate_post(ADD, body="{", headers={"Content-Type": "text/plain"}).status_code
    # ... reads are never limited, and a spoofed X-Forwarded-For from an untrusted peer is no help.
    assert client.simulate_get("/healthz").status_code == 200
    assert client.simulate_get("/api/safetyheatmap/categories").status_code == 200
    assert _post(client, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    clock.t += 2
    assert _post(client).status_code == 202
    limiter.close()


def test_behind_a_trusted_proxy_each_forwarded_client_has_a_bucket(
    tmp_path: Path, table: Path, clock: Clock
) -> None:
    limiter = SharedBuckets(table, per_minute=30, burst=1, clock=clock)
    client, _ = _client(tmp_path, limiter, trusted_proxies=("10.0.0.0/8",))

    def post(xff: str) -> int:
        status: int = _post(
            client, headers={"X-Forwarded-For": xff}, remote_addr="10.0.3.4"
        ).status_code
        return status

    assert post("198.51.100.1") == 202
    assert post("198.51.100.1") == 429
    assert post("spoof, 198.51.100.2") == 202
    assert post("198.51.100.1, 198.51.100.2") == 429  # the right-most untrusted hop counts
    limiter.close()


def test_no_limiter_means_no_limit(tmp_path: Path) -> None:
    queue = _Queue()
    app = create_app(
        Settings(frontend_dir=str(tmp_path), rate_limit_per_minute=0),
        queue,
        GridReader(BlobCache(_Grids(), 1, 8), Pyramid(200, 16)),  # type: ignore[arg-type]
        {},
        lambda: NOW,
        limiter=ratelimit.from_settings(Settings(rate_limit_per_minute=0)),
    )
    client = testing.TestClient(app)
    assert all(_post(client).status_code == 202 for _ in range(50))
