"""moto with the one cost this system meets made like AWS's (the embedded emulator's fix).

DynamoDB Query: moto sorts the whole table to find one partition (~13 us per stored item), where
DynamoDB reads only that partition. Fixed for table queries (no index): only the partition's
items are sorted and filtered, by moto's own code. Answers are unchanged
(tests/unit/shared/dev/test_emulator.py compares them with stock moto).

Why only this one (bench/freshness.py --rate 30 --duration 45, the rate and the ~1,300 reports
of the integration tests; probe ack-to-visible p50 / p95, 2026-12-06): without it, the other
fixes kept, 0.72 / 1.33 s and 58 s to catch up, against 0.36-0.48 / 0.93-4.61 s and 30-38 s
with any one other fix left out; the integration tests (test_loop, test_faults) pass without
any fix. The fixes removed, each measured out in turn at that rate (the figures without each):
the SQS retention check (0.39 / 1.31 s), SendMessage's attributes (0.37 / 3.10 s), the
projection (0.36 / 3.03 s), the read serializer (0.37 / 4.61 s), and, together, the clock, the
sort key's cast, the item size check, the routing and dispatch caches and the request id
regex (0.48 / 0.93 s). With no fix at all: 0.80 / 1.24 s, 49 s; this fix alone: 0.96 / 4.12 s,
55 s (under other people's load, 4-8: no fix 24.1 / 37.4 s against all of them 1.19 / 4.70 s).

The fix replaces moto's private ``Table.query`` and ``Table.all_items``: it is written for
moto ``MOTO_VERSION`` and refuses to apply to any other (an upgrade is a review of it, and the
unit tests fail until it is done). shared/dev/emulator.py installs it; importing this module
imports moto, which the server does only after gevent has patched the standard library.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import moto
from moto.dynamodb.models.table import Table

MOTO_VERSION = "5.2.5"
"""The moto release the fix was read against and measured on."""

_local = threading.local()


class MotoVersionError(RuntimeError):
    """The installed moto is not the release the fix was written for."""


def check_version(installed: str | None = None) -> None:
    """Raise unless moto is the release the fix was written for: the private methods it
    replaces may have changed (or been fixed) in another."""
    installed = moto.__version__ if installed is None else installed
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"shared/dev/motofixes.py was written for moto {MOTO_VERSION}, not {installed}: "
            "review the fix against this moto (and set MOTO_VERSION), or run stock moto with "
            "SAFETYHEATMAP_EMULATOR_FIXES=false"
        )


def patch() -> None:
    """Idempotent: the fix is installed once per process, and only on MOTO_VERSION."""
    check_version()
    if getattr(Table, "_safetyheatmap_patched", False):
        return
    stock_query = Table.query
    stock_all_items = Table.all_items
    signature = inspect.signature(stock_query)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        if bound.arguments.get("index_name") or hash_key is None or not self.range_key_attr:
            return stock_query(self, *args, **kwargs)
        _local.only = (self, hash_key)
        try:
            return stock_query(self, *args, **kwargs)
        finally:
            _local.only = None

    def all_items(self: Any) -> Any:
        only = getattr(_local, "only", None)
        if only is None or only[0] is not self:
            return stock_all_items(self)
        bucket = self.items.get(only[1])  # a plain get: the defaultdict must not grow
        # DynamoType.__lt__ compares the two cast values: the same order, one cast per item.
        return sorted(bucket.values(), key=lambda item: item.range_key.cast_value) if bucket else []

    # setattr: mypy rightly frowns on assigning methods; this is the one place that must.
    setattr(Table, "query", query)  # noqa: B010
    setattr(Table, "all_items", all_items)  # noqa: B010
    setattr(Table, "_safetyheatmap_patched", True)  # noqa: B010
