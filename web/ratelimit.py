"""Per-client token buckets for report submissions, in the web process.

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
    limit off (load tests, benchmarks, the integration stack). Hand-written (the two functions
    below): the one rate-limit library pinned, pyrate-limiter (a dev dependency, through
    schemathesis), counts hits in sliding windows, which cannot say "10 at once, then one every
    2 s": its Retry-After after a burst would be the whole window.

Who is a client
    The TCP peer (``req.remote_addr``), unless the peer is inside ``trusted_proxies`` (CIDRs;
    API Gateway's VPC link). Then the client is the right-most ``X-Forwarded-For`` hop that is
    not itself a trusted proxy: hops to the left of it were written by the client and prove
    nothing. IPv6 clients are grouped by /64, the block one subscriber usually gets, so a
    client cannot step around its bucket by rotating addresses inside its own prefix.

Privacy
    The address is never kept: a bucket is found by ``HMAC-SHA256(key, address)``, the key being
    ``client_hash_key``, else the host's random key (``web.hostkey``), which the submitter
    pseudonyms use too (``secret``). Nothing of it is written anywhere.

One process
    Buckets live in the web process: one per web task in production (``WEB_WORKERS`` 1 in the
    infra stack, compose and ``make run``; one process holds one SQS batcher). With
    ``WEB_WORKERS=N`` each process limits on its own, so a client that reaches all of them may
    send up to N times the burst and the rate; keep 1 where the limit matters. Likewise each
    host (each web task) limits on its own; API Gateway's stage throttling is the global
    backstop, and a shared store (DynamoDB, Redis) the next step if limits must be exact
    across hosts.

Bound
    At most ``MAX_CLIENTS`` buckets (65,536, 16 MiB full, tracemalloc), the least recently used
    dropped first. A bucket idle for ``burst / rate`` (20 s by default) is full, which is what a
    forgotten client starts with again, so only more than 65,536 clients within 20 s lose
    anything, and that errs towards letting them through.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import falcon

from shared.config.settings import Settings
from web import hostkey

MAX_CLIENTS = 65_536
IPV6_CLIENT_PREFIX = 64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    """Tokens in a bucket at ``now``; a clock that went back refills nothing."""
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


class Buckets:
    """The process's buckets, by keyed hash of the client; safe to share between threads."""

    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        key: bytes | None = None,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("per_minute must be positive, burst and max_clients at least 1")
        self._per_second = per_minute / 60.0
        self._burst = burst
        self._key = key or hostkey.KEY
        self._max = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    @property
    def secret(self) -> bytes:
        """The hash key: the submitter pseudonyms' secret too (``shared.model.pseudonym``)."""
        return self._key

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> Decision:
        """Take one token from ``client``'s bucket (a key from :class:`ClientAddress`)."""
        slot = hmac.digest(self._key, client.encode(), "sha256")
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(slot, (float(self._burst), now))
            stored, decision = take(tokens, last, now, self._per_second, self._burst)
            self._buckets[slot] = (stored, now)
            self._buckets.move_to_end(slot)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return decision


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
        buckets: Buckets,
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


def from_settings(settings: Settings) -> Buckets | None:
    """The process's buckets, or None when the limit is off (``RATE_LIMIT_PER_MINUTE=0``)."""
    if settings.rate_limit_per_minute <= 0:
        return None
    return Buckets(
        per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        key=settings.client_hash_key.encode() or None,
    )
