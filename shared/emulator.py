"""The embedded AWS emulator: moto server, with two of its cost shapes made like AWS's.

moto answers correctly but, in two places this system leans on, its cost grows with the data
in a way AWS's does not, and a backlog then feeds on itself:

- SQS ReceiveMessage checks each message's retention period by computing *all* queue
  attributes, three of which scan every message: O(depth^2) per call. A few hundred queued
  messages make each receive take longer than a second, the worker falls further behind, and
  the queue grows (seen in bench/freshness.py). Fixed: the retention period is read directly.
- DynamoDB Query sorts the whole table to find one partition: ~13 us per stored item, so
  with 10,000 reports each Query takes ~130 ms where DynamoDB reads only that partition.
  Fixed for table queries (no index): only the partition's items are sorted and filtered, by
  moto's own code.

Two more costs are per request, whatever the data, and are cached: the server lists moto's
package directory (an ``isdir`` per service, ~100 of them) to route every request, and lists
each response class's methods (``inspect.getmembers``) to dispatch it; both answers are fixed
once moto is imported. Together with werkzeug's per-request log line (off: the services log
what they ask) they were a fifth of the emulator's CPU at 1,000 reports/s (py-spy).

Answers are unchanged (tests/unit/test_emulator.py compares them with stock moto); only
their cost is. ``make run``, the tests and the benchmarks start this; compose.yaml runs the
stock moto image. Start: ``python -m shared.emulator -H 127.0.0.1 -p PORT`` (moto_server's
arguments).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
from typing import Any

import moto.backends
import moto.core.responses
from moto.core.utils import method_names_from_class, unix_time
from moto.dynamodb.models.table import Table
from moto.server import main as moto_main
from moto.sqs.models import SQSBackend

from shared import gctune

_local = threading.local()


def patch() -> None:
    """Idempotent: the fixes are installed once per process."""
    if getattr(Table, "_safetyheatmap_patched", False):
        return

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period", retention_ok)  # noqa: B010

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
        return sorted(bucket.values(), key=lambda item: item.range_key) if bucket else []

    # setattr: mypy rightly frowns on assigning methods; this is the one place that must.
    setattr(Table, "query", query)  # noqa: B010
    setattr(Table, "all_items", all_items)  # noqa: B010
    modules = frozenset(moto.backends.list_of_moto_modules())
    setattr(moto.backends, "list_of_moto_modules", lambda: modules)  # noqa: B010
    # Only `action in names` is asked of the answer: a set per class, computed once.
    names = functools.cache(lambda cls: frozenset(method_names_from_class(cls)))
    setattr(moto.core.responses, "method_names_from_class", names)  # noqa: B010
    setattr(Table, "_safetyheatmap_patched", True)  # noqa: B010


def main(argv: list[str] | None = None) -> None:
    patch()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    gctune.tune()  # moto's backends hold every item and message: keep full scans rare
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
