"""Per-client token buckets for report submissions, shared by the gunicorn workers of one host.

What is limited
    ``POST /api/safetyheatmap/report/add`` only: it is the one request that costs a queue
    message, a DynamoDB write and a recompute. Reads (heatmap, tiles, categories, config) are
    cheap, answered from an in-process cache and cacheable by the CDN/browser, so they are not
    limited here; API Gateway's stage throttling covers them.

The bucket
    Each client has a bucket of ``rate_limit_burst`` tokens (default 10) that refills
    continuously at ``rate_limit_per_minute`` tokens a minute (default 30). A submission takes
    one token; with none left the answer is ``429`` with ``Retry-After`` (whole seconds until a
    token is back) in the usual error shape. ``SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE=0`` turns the
    limit off (load tests, benchmarks, the integration stack).

Who is a client
    The TCP peer (``req.remote_addr``), unless the peer is inside ``trusted_proxies`` (CIDRs;
    API Gateway's VPC link). Then the client is the right-most ``X-Forwarded-For`` hop that is
    not itself a trusted proxy: hops to the left of it were written by the client and prove
    nothing. IPv6 clients are grouped by /64, the block one subscriber usually gets, so a
    client cannot step around its bucket by rotating addresses inside its own prefix.

Privacy
    The address is never stored. Its key is ``HMAC-SHA256(client_hash_key, address)``; the table
    keeps 64 bits of that (the slot's fingerprint) and nothing else, and the key is never kept
    with a report. With ``client_hash_key`` empty a random key is made when the table file is
    first created and kept in the file's header (mode 0600), so every worker of the host uses
    the same key without configuration.

Sharing across workers
    A file (``rate_limit_file``; default ``safetyheatmap-ratelimit-<port>.bin`` in the system
    temp folder) is memory-mapped by every worker: a header, then ``SETS x WAYS`` fixed-size
    slots of (fingerprint, tokens, last refill). A lookup reads the ``WAYS`` slots of one set
    under ``fcntl.flock`` (plus a thread lock: flock does not exclude threads sharing a file
    description), so a request costs O(1) and two syscalls, with no server to run. Times are
    ``time.monotonic()``, which on Linux is one clock for every process of the host.

Collisions
    The set is chosen by the keyed hash, so nobody can aim at another client's set. A client
    whose fingerprint is not in its set takes an empty slot, else the slot whose bucket would by
    now be fullest (a full bucket is exactly what a new client gets, so evicting it changes
    nothing). Only when more than ``WAYS`` clients of one set are all mid-burst at once is a
    partly used bucket evicted, and that errs towards letting the evicted client through: it
    starts again with a full bucket. Two clients sharing a fingerprint (1 in 2**64 per set)
    would share a bucket.

Several hosts
    Each host (each web task) limits on its own, so N hosts let a client through up to N times
    the rate. API Gateway's stage throttling is the global backstop; a shared store (DynamoDB,
    Redis) would be the next step if per-client limits must be exact across hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import math
import mmap
import os
import secrets
import stat
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import falcon

from shared.config.settings import Settings

MAGIC = b"SHMRL001"
HEADER = struct.Struct("<8sII32s")  # magic, sets, ways, hash key
HEADER_SIZE = 64
SLOT = struct.Struct("<Qdd")  # fingerprint (0: empty), tokens, last refill (monotonic seconds)
SETS = 16384
WAYS = 4
IPV6_CLIENT_PREFIX = 64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimitFileError(RuntimeError):
    """The table file is not ours to use (wrong owner, mode, or not a regular file)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: float
    """Tokens left after this request (allowed) or now (denied)."""
    retry_after: float
    """Seconds until one token is back; 0 when allowed."""

    @property
    def retry_after_header(self) -> int:
        """Whole seconds, never 0 for a denial: a client that waits that long succeeds."""
        return max(1, math.ceil(self.retry_after - 1e-9))


def refill(tokens: float, last: float, now: float, per_second: float, burst: int) -> float:
    """Tokens in a bucket at ``now``; a clock that went back (reboot) refills nothing."""
    elapsed = max(0.0, now - last)
    return min(float(burst), tokens + elapsed * per_second)


def take(
    tokens: float, last: float, now: float, per_second: float, burst: int
) -> tuple[float, Decision]:
    """One request against a bucket: (tokens to store, decision). Pure, for the tests."""
    current = refill(tokens, last, now, per_second, burst)
    if current >= 1.0:
        return current - 1.0, Decision(True, current - 1.0, 0.0)
    return current, Decision(False, current, (1.0 - current) / per_second)


class SharedBuckets:
    """The mmap table; one instance per process (a forked child reopens the file)."""

    def __init__(
        self,
        path: Path,
        *,
        per_minute: int,
        burst: int,
        key: bytes | None = None,
        sets: int = SETS,
        ways: int = WAYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.path = path
        self._per_second = per_minute / 60.0
        self._burst = burst
        self._configured_key = key
        self._sets = sets
        self._ways = ways
        self._clock = clock
        self._size = HEADER_SIZE + sets * ways * SLOT.size
        self._lock = threading.Lock()
        self._fd = -1
        self._mm: mmap.mmap | None = None
        self._key = b""
        with self._lock:
            self._open()
        _INSTANCES.add(self)

    # --- public --------------------------------------------------------------------------
    def take(self, client: str) -> Decision:
        """Take one token from ``client``'s bucket (a key from :class:`ClientAddress`)."""
        with self._locked() as mm:
            digest = hmac.new(self._key, client.encode(), hashlib.sha256).digest()
            index = int.from_bytes(digest[:8], "big") % self._sets
            fingerprint = int.from_bytes(digest[8:16], "big") or 1
            now = self._clock()
            base = HEADER_SIZE + index * self._ways * SLOT.size
            slots = [SLOT.unpack_from(mm, base + i * SLOT.size) for i in range(self._ways)]
            way = self._choose(slots, fingerprint, now)
            if slots[way][0] == fingerprint:
                tokens, last = slots[way][1], slots[way][2]
            else:
                tokens, last = float(self._burst), now
            stored, decision = take(tokens, last, now, self._per_second, self._burst)
            SLOT.pack_into(mm, base + way * SLOT.size, fingerprint, stored, now)
        return decision

    @property
    def secret(self) -> bytes:
        """The hash key, shared by the host's processes: the submitter pseudonyms' secret too
        (``shared.model.pseudonym``), so every process of a host gives a client the same one."""
        with self._locked():
            return self._key

    @property
    def key_fingerprint(self) -> str:
        """A digest of the hash key (not the key): lets tests check that processes share it."""
        with self._locked():
            return hashlib.sha256(b"fingerprint:" + self._key).hexdigest()[:16]

    def close(self) -> None:
        with self._lock:
            self._release()
        _INSTANCES.discard(self)

    # --- internals -----------------------------------------------------------------------
    def _choose(self, slots: list[tuple[int, float, float]], fingerprint: int, now: float) -> int:
        for way, (fp, _, _) in enumerate(slots):
            if fp == fingerprint:
                return way
        for way, (fp, _, _) in enumerate(slots):
            if fp == 0:
                return way

        # Evict the bucket that would be fullest now (the longest idle on ties): losing a full
        # bucket loses nothing, since a newcomer starts full too.
        def fullness(way: int) -> tuple[float, float]:
            _, tokens, last = slots[way]
            return refill(tokens, last, now, self._per_second, self._burst), -last

        return max(range(len(slots)), key=fullness)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[mmap.mmap]:
        with self._lock:
            mm = self._mm if self._mm is not None else self._open()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield mm
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> mmap.mmap:
        """Open the file and map it; create or reset it when the header is not ours."""
        fd = _open_private(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < self._size:
                    os.ftruncate(fd, self._size)
                mm = mmap.mmap(fd, self._size)
                magic, sets, ways, stored_key = HEADER.unpack_from(mm, 0)
                if magic != MAGIC or sets != self._sets or ways != self._ways:
                    stored_key = secrets.token_bytes(32)
                    mm[: self._size] = bytes(self._size)
                    HEADER.pack_into(mm, 0, MAGIC, self._sets, self._ways, stored_key)
                    mm.flush()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._mm = fd, mm
        self._key = self._configured_key or stored_key
        return mm

    def _release(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _after_fork_in_child(self) -> None:
        # A flock taken through the parent's file description would not exclude the parent,
        # and a lock some parent thread held at fork time would never be released here: start
        # over with our own lock, and reopen the file on first use.
        self._lock = threading.Lock()
        self._release()


_INSTANCES: weakref.WeakSet[SharedBuckets] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for buckets in list(_INSTANCES):
        buckets._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)


def _open_private(path: Path) -> int:
    """Open or create the table, refusing a symlink or a file another user could write: the
    default lives in the shared temp folder under a predictable name."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise RateLimitFileError(f"cannot open the rate-limit table {path}: {exc}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise RateLimitFileError(
            f"{path} must be a regular file owned by uid {os.geteuid()} with mode 0600"
        )
    return fd


# --- who is the client ---------------------------------------------------------------------
def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of trusted proxies; host bits are allowed (10.0.0.7/16)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def parse_hop(raw: str) -> Address | None:
    """One X-Forwarded-For entry: an address, maybe with a port ([v6]:port, v4:port)."""
    text = raw.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(address: Address) -> str:
    """What one bucket is for: an IPv4 address, or the /64 of an IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


class ClientAddress:
    """The client of a request, believing X-Forwarded-For only from trusted proxies."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        peer_address = parse_hop(peer or "")
        if peer_address is None:
            return f"peer:{peer or ''}"  # not an IP (a unix socket): one client
        if not self._trusted or not self.is_trusted(peer_address) or not forwarded_for:
            return client_key(peer_address)
        hops = [h for h in forwarded_for.split(",") if h.strip()]
        leftmost: Address | None = None
        for raw in reversed(hops):
            hop = parse_hop(raw)
            if hop is None:
                # A trusted proxy wrote this, so it should parse; if it doesn't, trust the
                # address we know rather than anything further left (which the client wrote).
                return client_key(peer_address)
            if not self.is_trusted(hop):
                return client_key(hop)
            leftmost = hop
        return client_key(leftmost or peer_address)

    def __call__(self, req: falcon.Request) -> str:
        return self.resolve(req.remote_addr, req.get_header("X-Forwarded-For"))


# --- the middleware ------------------------------------------------------------------------
class RateLimit:
    """Falcon middleware: takes a token for each limited (method, route template)."""

    def __init__(
        self,
        buckets: SharedBuckets,
        client: Callable[[falcon.Request], str],
        routes: Collection[tuple[str, str]],
    ) -> None:
        self._buckets = buckets
        self._client = client
        self._routes = frozenset(routes)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None or (req.method, req.uri_template) not in self._routes:
            return
        decision = self._buckets.take(self._client(req))
        if not decision.allowed:
            raise falcon.HTTPTooManyRequests(
                title="rate_limited",
                description="too many reports from this address; retry after the given seconds",
                retry_after=decision.retry_after_header,
            )


def default_path(settings: Settings) -> Path:
    if settings.rate_limit_file:
        return Path(settings.rate_limit_file)
    return Path(tempfile.gettempdir()) / f"safetyheatmap-ratelimit-{settings.port}.bin"


def from_settings(settings: Settings) -> SharedBuckets | None:
    """The host's table, or None when the limit is off (``RATE_LIMIT_PER_MINUTE=0``)."""
    if settings.rate_limit_per_minute <= 0:
        return None
    return SharedBuckets(
        default_path(settings),
        per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        key=settings.client_hash_key.encode() or None,
    )
