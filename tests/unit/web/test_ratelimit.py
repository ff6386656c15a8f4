"""Token buckets: the maths, one process's buckets, who the client is, and the 429."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from shared.config.settings import Settings, SettingsError
from shared.geo.tiles import Pyramid
from web import hostkey, ratelimit
from web.app import create_app
from web.grids import BlobCache, GridReader
from web.ratelimit import Buckets, ClientAddress, Decision, refill, take

ROOT = Path(__file__).resolve().parents[3]
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
def buckets(clock: Clock) -> Buckets:
    return Buckets(per_minute=60, burst=3, clock=clock)


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


# --- the buckets ---------------------------------------------------------------------------------
def test_burst_then_steady_rate(buckets: Buckets, clock: Clock) -> None:
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


def test_clients_have_their_own_buckets(buckets: Buckets) -> None:
    for _ in range(3):
        assert buckets.take("198.51.100.1").allowed
    assert not buckets.take("198.51.100.1").allowed
    assert buckets.take("198.51.100.2").allowed


def test_the_least_recently_used_bucket_goes_first_and_busy_ones_stay(clock: Clock) -> None:
    b = Buckets(per_minute=60, burst=2, max_clients=4, clock=clock)
    busy = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert b.take("10.0.0.4").allowed  # used first, then not again: the first to go
    for client in busy:
        assert b.take(client).allowed and b.take(client).allowed
    for n in range(5, 20):
        assert b.take(f"10.0.0.{n}").allowed  # each newcomer starts with a full bucket
        for client in busy:  # still sending: kept, and still limited
            assert not b.take(client).allowed, client
    assert len(b) == 4
    assert b.take("10.0.0.4").allowed and b.take("10.0.0.4").allowed  # forgotten: full again


def test_threads_share_one_bucket_without_losing_a_take(clock: Clock) -> None:
    b = Buckets(per_minute=1, burst=200, clock=clock)
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def run() -> None:
        start.wait(10)
        allowed.extend(b.take("192.0.2.10").allowed for _ in range(50))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(allowed) == 400 and sum(allowed) == 200  # one bucket of 200 for 400 attempts


def test_buckets_hold_no_address_and_use_the_configured_key_else_the_hosts() -> None:
    b = Buckets(per_minute=60, burst=1)
    b.take("203.0.113.77")
    assert not any(b"203.0.113.77" in slot for slot in b._buckets)
    assert b.secret == hostkey.KEY and len(hostkey.KEY) == 32
    assert Buckets(per_minute=60, burst=1, key=b"deployment secret").secret == b"deployment secret"
    with pytest.raises(ValueError):
        Buckets(per_minute=0, burst=1)


def test_the_gunicorn_master_makes_the_host_key_before_it_forks_workers() -> None:
    probe = (
        "import runpy, sys; runpy.run_path('web/gunicorn_conf.py'); "
        "print('web.hostkey' in sys.modules, 'web.ratelimit' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "False"]  # the key, not the app's modules


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


def test_from_settings_takes_the_limits_and_the_key() -> None:
    s = Settings(rate_limit_per_minute=6, rate_limit_burst=2, client_hash_key="k")
    b = ratelimit.from_settings(s)
    assert b is not None and b.secret == b"k"
    assert [b.take("c").allowed for _ in range(3)] == [True, True, False]
    assert b.take("c").retry_after_header == 10  # 6/min: a token every 10 s


# --- through the app -----------------------------------------------------------------------------
class _Queue:
    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, report: object, request_id: str) -> None:
        self.sent += 1


class _Grids:
    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        return {}


def _client(tmp_path: Path, limiter: Buckets, **settings: Any) -> tuple[testing.TestClient, _Queue]:
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


def test_429_with_retry_after_in_the_error_shape(tmp_path: Path, clock: Clock) -> None:
    limiter = Buckets(per_minute=30, burst=2, clock=clock)
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


def test_behind_a_trusted_proxy_each_forwarded_client_has_a_bucket(
    tmp_path: Path, clock: Clock
) -> None:
    limiter = Buckets(per_minute=30, burst=1, clock=clock)
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
