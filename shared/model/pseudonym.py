"""Submitter pseudonyms: who sent two reports, known for one day, never who they are.

The privacy rule counts distinct submitters (``shared.geo.privacy``): planting k-1 reports beside
someone else's is the cheapest attack on a threshold, and counting each submitter once stops it
from one address. A pseudonym is ``HMAC-SHA256(period_key, client)`` where ``client`` is the
rate limiter's client key (the address, or the /64 of an IPv6 one) and ``period_key`` is
``HMAC-SHA256(secret, "pseudonym|<period>")``, the period being the number of whole
``rotation_s`` since the Unix epoch. So:

- it is stored with the report and never the address; without the secret it says nothing of
  the address, and the secret never leaves the web process;
- two reports from one client in one period share it; across periods they do not (the period
  key changes), so pseudonyms do not link a person's reports over days;
- the cost of that unlinkability: one person's reports from different days count as different
  submitters. Accepted, because a daily key bounds what a stolen table reveals to one day of
  linkage, and an attacker who wants k-1 "people" by waiting needs k-1 days per cluster, while
  the map's before/after differencing (docs/ARCHITECTURE.md) is a faster attack anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable


class Pseudonyms:
    def __init__(
        self, secret: bytes, rotation_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("a pseudonym needs a secret")
        self._secret = secret
        self._rotation = rotation_s
        self._clock = clock
        self._period = -1
        self._key = b""

    def __call__(self, client: str) -> str:
        period = int(self._clock() // self._rotation)
        if period != self._period:
            label = b"pseudonym|%d" % period
            self._key = hmac.new(self._secret, label, hashlib.sha256).digest()
            self._period = period
        return hmac.new(self._key, client.encode(), hashlib.sha256).hexdigest()[:32]
