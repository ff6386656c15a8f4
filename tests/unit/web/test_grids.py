"""The web's tile cache: one thread refreshes an expired entry, the others serve the old copy."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shared.config.settings import Settings
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.keys import TILES_WRITTEN
from shared.store.provision import provision
from web.grids import SETTLE_S, STALE_ANSWER_S, STALE_GRACE_S, Answer, BlobCache, RecentAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowGrids:
    """get_many blocks while `gate` is closed, so a refresh can be caught in flight."""

    def __init__(self) -> None:
        self.items = {"k": (b"v1", "t1")}
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def get_many(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(10)
        return {k: self.items[k] for k in keys if k in self.items}


def test_an_expired_entry_is_refreshed_once_while_others_serve_the_old_copy() -> None:
    grids, clock = SlowGrids(), Clock()
    cache = BlobCache(grids, ttl=0.5, size=8, clock=clock)  # type: ignore[arg-type]
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")}
    clock.now += 0.2
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")} and grids.calls == 1  # fresh
    clock.now += 0.5  # expired
    grids.items["k"] = (b"v2", "t2")
    grids.gate.clear()
    grids.entered.clear()
    got: dict[str, object] = {}
    refresher = threading.Thread(target=lambda: got.update(cache.get_many(["k"])))
    refresher.start()
    assert grids.entered.wait(10)
    # Another request meanwhile: the old copy, at once, and no second fetch.
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")}
    assert grids.calls == 2
    grids.gate.set()
    refresher.join(10)
    assert got == {"k": (b"v2", "t2")}
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 2


def test_a_refresh_stuck_past_the_grace_lets_every_thread_fetch() -> None:
    grids, clock = SlowGrids(), Clock()
    cache = BlobCache(grids, ttl=0.5, size=8, clock=clock)  # type: ignore[arg-type]
    cache.get_many(["k"])
    clock.now += 0.6
    grids.gate.clear()
    grids.entered.clear()
    stuck = threading.Thread(target=lambda: cache.get_many(["k"]))
    stuck.start()
    assert grids.entered.wait(10)
    clock.now += STALE_GRACE_S  # the refresh has hung that long: the old copy is too old
    grids.items["k"] = (b"v3", "t3")
    grids.gate.set()  # this thread's own fetch must not wait on the stuck one
    assert cache.get_many(["k"]) == {"k": (b"v3", "t3")}
    stuck.join(10)
    assert grids.calls == 3


def test_a_key_never_seen_is_fetched_by_every_thread_that_asks() -> None:
    grids, clock = SlowGrids(), Clock()
    cache = BlobCache(grids, ttl=0.5, size=8, clock=clock)  # type: ignore[arg-type]
    assert cache.get_many(["absent"]) == {}
    assert cache.get_many(["absent"]) == {} and grids.calls == 1  # an absence is cached too
    clock.now += 1.0
    assert cache.get_many(["absent", "k"]) == {"k": (b"v1", "t1")} and grids.calls == 2


class Beacon:
    """The worker's tiles-written item, as the web reads it; counts the reads."""

    def __init__(self) -> None:
        self.value: str | None = "w1"
        self.reads = 0
        self.down = False

    def __call__(self) -> str | None:
        self.reads += 1
        if self.down:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Get")
        return self.value


def test_a_rewritten_beacon_expires_every_copy_and_is_read_at_most_every_check() -> None:
    grids, clock, beacon = SlowGrids(), Clock(), Beacon()
    cache = BlobCache(grids, ttl=2.0, size=8, clock=clock, beacon=beacon, check_every=0.1)  # type: ignore[arg-type]
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")} and beacon.reads == 1
    for _ in range(5):  # within one check: the beacon is not read again
        assert cache.get_many(["k"]) == {"k": (b"v1", "t1")}
    assert beacon.reads == 1 and grids.calls == 1
    clock.now += 0.5  # unchanged: the copy lasts its whole TTL
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")}
    assert beacon.reads == 2 and grids.calls == 1
    grids.items["k"] = (b"v2", "t2")
    beacon.value = "w2"  # the worker wrote tiles
    clock.now += 0.05
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")}  # not looked at yet
    clock.now += 0.06
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 2
    beacon.down = True
    clock.now += 0.2  # a failed look changes nothing
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 2
    clock.now += 2.0  # and the TTL still bounds the staleness
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 3


def test_a_copy_fetched_just_after_a_change_is_fetched_once_more_when_it_settled() -> None:
    """An eventually consistent read just after the worker's write may return the old tile."""
    grids, clock, beacon = SlowGrids(), Clock(), Beacon()
    cache = BlobCache(grids, ttl=10.0, size=8, clock=clock, beacon=beacon, check_every=0.1)  # type: ignore[arg-type]
    cache.get_many(["k"])
    clock.now += SETTLE_S  # long after the first look's change
    beacon.value = "w2"
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")} and grids.calls == 2  # read too soon
    grids.items["k"] = (b"v2", "t2")  # the write shows now
    clock.now += SETTLE_S / 2
    assert cache.get_many(["k"]) == {"k": (b"v1", "t1")} and grids.calls == 2
    clock.now += SETTLE_S / 2
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 3  # settled
    clock.now += SETTLE_S
    assert cache.get_many(["k"]) == {"k": (b"v2", "t2")} and grids.calls == 3  # then it lasts


def test_every_write_of_tiles_rewrites_the_beacon(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        settings = Settings()
        provision(settings)
        grids = GridRepository(aws.client(settings, "dynamodb"), settings.grids_table)
        assert grids.get_meta(TILES_WRITTEN) is None
        grids.put_many({"d#all|all#3/2/2": b"x"}, "2026-12-02T00:00:00+00:00")
        first = grids.get_meta(TILES_WRITTEN)
        grids.put_many({}, "2026-12-02T00:00:01+00:00")  # nothing written: nothing to tell
        assert grids.get_meta(TILES_WRITTEN) == first
        grids.put_many({"d#all|all#3/2/2": b"y"}, "2026-12-02T00:00:00+00:00")  # same time
        assert grids.get_meta(TILES_WRITTEN) not in (None, first)


def test_an_answer_from_a_copy_served_during_its_refresh_is_kept_briefly() -> None:
    """A copy past its TTL is served while one thread refreshes it; an answer built from it is
    kept STALE_ANSWER_S, so that the other requests do not each build it again meanwhile."""
    clock = Clock()
    recent = RecentAnswers(ttl=2.0, clock=clock)
    fresh, stale = Answer('"a"', b"A", "application/json"), Answer('"b"', b"B", "application/json")
    recent.put("fresh", fresh, age=1.5)  # kept for what is left of the TTL: 0.5 s
    recent.put("stale", stale, age=2.5)
    clock.now += STALE_ANSWER_S / 2
    assert recent.get("fresh") is fresh and recent.get("stale") is stale
    clock.now += STALE_ANSWER_S
    assert recent.get("fresh") is fresh and recent.get("stale") is None
    clock.now += 0.5
    assert recent.get("fresh") is None
