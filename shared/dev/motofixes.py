"""moto with the costs this system meets made like AWS's (the embedded emulator's fixes).

moto answers correctly but, in places this system leans on, its cost grows with the data in a
way AWS's does not, and a backlog then feeds on itself:

- SQS ReceiveMessage checks each message's retention period by computing *all* queue
  attributes, three of which scan every message: O(depth^2) per call. A few hundred queued
  messages make each receive take longer than a second, the worker falls further behind, and
  the queue grows (seen in bench/freshness.py). Fixed: the retention period is read directly.
  SendMessage computed them too, for one flag (ContentBasedDeduplication): O(depth) per send,
  ~3 ms at a few hundred messages. Sending now reads that flag alone. Elsewhere (GetQueueAttributes)
  each message's visible/delayed check reads time.time() instead of a datetime round trip, the
  same value.
- DynamoDB Query sorts the whole table to find one partition: ~13 us per stored item, so
  with 10,000 reports each Query takes ~130 ms where DynamoDB reads only that partition.
  Fixed for table queries (no index): only the partition's items are sorted and filtered, by
  moto's own code.
- The partition's items were sorted with moto's comparison of typed values, which converts
  both sides on every comparison: the sort key of a Query over a partition of a few thousand
  marks cost more than the rest of the Query. They are sorted by the same converted value,
  computed once per item.
- A written item checked its size limit on each attribute by re-measuring every attribute set
  before it (quadratic in attributes; a tile's blob measured again for each later attribute).
  It now adds each attribute's size to a running total: the same check, the same error.
- A projection (``ProjectionExpression``) converted each item to Python values and back:
  ~0.15 ms an attribute, half the CPU of a Query for a partition's reports. Top-level names
  now take the item's values as they are.
- Reads (Query, GetItem, BatchGetItem) went through moto's generic response serializer,
  ~0.7 ms per item of a few attributes (a page of 1,000 dirty marks: 0.77 s). They are
  written straight to DynamoDB's JSON now (0.16 s for that page).

Other costs are per request, whatever the data:

- The server listed moto's package directory (an ``isdir`` per service, ~100 of them) to
  route every request, and each response class's methods (``inspect.getmembers``) to
  dispatch it; both answers are fixed once moto is imported, so they are cached.
- Every answer was searched for an XML request id by a lookbehind regex (~4 ms a 250 KB
  ReceiveMessage answer of batched reports, in JSON where there is none). It is looked for
  only in answers that hold one.

Measured need (bench/freshness.py --rate 100, bench/load_ack.py --rates 250,500): with them the
emulator spends 2.0 ms of CPU per report at 250/s; with the Query fix alone 3.2 ms, and the worker
fell 30-50 s behind at 100 reports/s (docs/BENCHMARKS.md). Each refuses to apply to any moto but
``MOTO_VERSION``: an upgrade is a review of every one (a unit test fails until it is done).

Answers are unchanged (tests/unit/shared/dev/test_emulator.py compares them with stock moto); only
their
cost is. shared/dev/emulator.py serves moto with these fixes; importing this module imports moto,
which the server does only after gevent has patched the standard library.
"""

from __future__ import annotations

import base64
import datetime
import functools
import inspect
import json
import re
import threading
import time
from typing import Any, cast

import moto.backends
import moto.core.responses
import moto.dynamodb.responses
import moto.sqs.models
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import method_names_from_class, unix_time
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import bytesize, dynamo_to_dict
from moto.sqs.models import Queue, SQSBackend
from moto.utilities.aws_headers import gen_amzn_requestid_long

_local = threading.local()
_stock_unix_time = unix_time


def _fast_unix_time(dt: datetime.datetime | None = None) -> float:
    return time.time() if dt is None else _stock_unix_time(dt)


def _fast_unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _fast_unix_time(dt) * 1000.0


MOTO_VERSION = "5.2.5"
"""The moto release the fixes were read against and measured on."""


class MotoVersionError(RuntimeError):
    """The installed moto is not the release the fixes were written for."""


def check_version(installed: str | None = None) -> None:
    """Raise unless moto is the release the fixes were written for: the private methods they
    replace may have changed (or been fixed) in another."""
    installed = moto.__version__ if installed is None else installed
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"shared/dev/motofixes.py was written for moto {MOTO_VERSION}, not {installed}: "
            "review the fixes against this moto (and set MOTO_VERSION), or run stock moto with "
            "SAFETYHEATMAP_EMULATOR_FIXES=false"
        )


def patch() -> None:
    """Idempotent: the fixes are installed once per process, and only on MOTO_VERSION."""
    check_version()
    if getattr(Table, "_safetyheatmap_patched", False):
        return

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period", retention_ok)  # noqa: B010
    # The clock behind every message's visible/delayed check: from a datetime round trip
    # (utcnow, minus the epoch) to time.time(), the same value.
    setattr(moto.sqs.models, "unix_time", _fast_unix_time)  # noqa: B010
    setattr(moto.sqs.models, "unix_time_millis", _fast_unix_time_millis)  # noqa: B010
    _patch_send_attributes()

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
    setattr(Item, "project", _project)  # noqa: B010
    setattr(Item, "__init__", _item_init)  # noqa: B010
    setattr(Table, "query", query)  # noqa: B010
    setattr(Table, "all_items", all_items)  # noqa: B010
    modules = frozenset(moto.backends.list_of_moto_modules())
    setattr(moto.backends, "list_of_moto_modules", lambda: modules)  # noqa: B010
    # Only `action in names` is asked of the answer: a set per class, computed once.
    names = functools.cache(lambda cls: frozenset(method_names_from_class(cls)))
    setattr(moto.core.responses, "method_names_from_class", names)  # noqa: B010
    setattr(moto.dynamodb.responses, "DynamoResult", _FastDynamoResult)  # noqa: B010
    setattr(BaseResponse, "_enrich_response", staticmethod(_enrich_response))  # noqa: B010
    setattr(Table, "_safetyheatmap_patched", True)  # noqa: B010


_stock_enrich_response = BaseResponse.__dict__["_enrich_response"]
_REQUEST_ID = re.compile(r"(?<=<RequestId>).*(?=<\/RequestId>)")


def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    """moto's own, but the XML request id is looked for only where it can be: the stock one
    ran its lookbehind regex over every answer, JSON ones too (a ReceiveMessage of ten
    batched messages is ~250 KB: a few ms per call)."""
    if "status" in headers:
        headers["status"] = str(headers["status"])
    request_id = gen_amzn_requestid_long(headers)
    if isinstance(body, str) and "<RequestId>" in body:  # bytes made the stock re.sub fail
        body = _REQUEST_ID.sub(request_id, body)
    return headers, body


#: moto's own limit (LimitedSizeDict): between the documented 400 KB and the measured 409-410 KB.
_ITEM_SIZE_LIMIT = 405000


def _item_init(
    self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
) -> None:
    """moto's Item.__init__, with LimitedSizeDict's check made linear: each attribute set
    re-measured every attribute set before it, and a running total is the same sum (the keys
    are distinct, and nothing else touches the dict meanwhile)."""
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    total = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        size = bytesize(key) + typed.size()
        if total + size > _ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)
        total += size


def _patch_send_attributes() -> None:
    """SendMessage (and each entry of SendMessageBatch) reads one flag of its queue's
    attributes, ContentBasedDeduplication, from the property that also counts the queue's
    messages three times over. While a send runs, the property answers that flag alone."""
    stock_attributes = cast(property, Queue.attributes)
    stock_send = SQSBackend.send_message

    def attributes(self: Any) -> dict[str, Any]:
        queue: Any = self  # what `is` narrows below; self stays the queue
        if getattr(_local, "sending", None) is not queue:
            return cast(dict[str, Any], stock_attributes.fget(self))  # type: ignore[misc]
        if not self.fifo_queue:
            return {}  # as the full answer: the flag is among the FIFO attributes only
        flag = self.content_based_deduplication
        return {"ContentBasedDeduplication": str(flag).lower() if isinstance(flag, bool) else flag}

    def send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        previous = getattr(_local, "sending", None)
        _local.sending = self.get_queue(queue_name)
        try:
            return stock_send(self, queue_name, *args, **kwargs)
        finally:
            _local.sending = previous

    setattr(Queue, "attributes", property(attributes))  # noqa: B010
    setattr(SQSBackend, "send_message", send_message)  # noqa: B010


_stock_project = Item.project


def _project(self: Item, projection_expressions: list[list[str]]) -> Item:
    """Top-level attribute names: the item's own values, shared. moto's projection turns the
    whole item into Python values and back for each item (~0.15 ms an attribute, half of a
    40-report partition Query); the values it returns are the same. Query has already
    copied the items it projects, and GetItem's answer is only serialized."""
    if any(len(path) != 1 or "[" in path[0] for path in projection_expressions):
        return _stock_project(self, projection_expressions)  # nested paths, list elements
    # Not BaseModel.__new__, which keeps every instance for moto's reset: this one lives for
    # one answer.
    result = cast(Item, object.__new__(Item))
    result.hash_key = self.hash_key
    result.range_key = self.range_key
    attrs = LimitedSizeDict.__new__(LimitedSizeDict)  # its size checks passed on the write
    dict.__init__(attrs)
    for (name,) in projection_expressions:
        if name in self.attrs:
            dict.__setitem__(attrs, name, self.attrs[name])
    result.attrs = attrs
    return result


_StockDynamoResult = moto.dynamodb.responses.DynamoResult
_FAST_OPERATIONS = frozenset({"Query", "GetItem", "BatchGetItem"})


class _Unsupported(Exception):
    """A value the fast encoder does not know: the stock serializer answers instead."""


def _wire(obj: Any) -> Any:
    """DynamoDB's JSON wire form of a result holding moto's DynamoType values."""
    if isinstance(obj, DynamoType):
        kind, value = obj.type, obj.value
        if kind == "B":
            value = _b64(value)
        elif kind == "BS":
            value = [_b64(v) for v in value]
        elif kind in ("L", "M"):
            value = _wire(value)
        return {kind: value}
    if isinstance(obj, dict):
        return {key: _wire(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_wire(value) for value in obj]
    if isinstance(obj, bytes):
        return _b64(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise _Unsupported(type(obj).__name__)


def _b64(value: Any) -> str:
    # moto holds binary values either raw or as the base64 text they arrived in.
    return value if isinstance(value, str) else base64.b64encode(value).decode("ascii")


class _FastDynamoResult(ActionResult):
    """moto's DynamoResult converts every item to Python values, and its generic serializer
    walks them against the botocore shapes, ~20 us per attribute value: a page of 1,000
    dirty marks took 0.77 s. Reads (Query, GetItem, BatchGetItem) are written straight to
    JSON instead; the status and headers still come from the stock serializer (of an empty
    result), and anything else goes the stock way."""

    def __init__(self, result: object) -> None:
        super().__init__(result)
        self._raw = result

    def execute_result(self, context: Any) -> Any:
        if context.operation_model.name in _FAST_OPERATIONS:
            try:
                body = json.dumps(_wire(self._raw), separators=(",", ":"))
            except _Unsupported:
                pass
            else:
                self._result = {}
                status, headers, _ = super().execute_result(context)
                return status, headers, body
        self._result = dynamo_to_dict(self._raw)
        return super().execute_result(context)
