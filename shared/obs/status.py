"""What operators look at: queue and DLQ depth, the last grid computation, freshness lag.

Everything comes from stored facts, never from a table scan:

- queue and DLQ: one ``GetQueueAttributes`` each (approximate counts, as SQS keeps them);
- last computation: the ``meta/last_computed_at`` item the recompute writes;
- freshness lag (acknowledged to visible): each dirty mark carries the acknowledgement ticks
  (100 ms) of the reports behind it; when a recompute has written a chunk's tiles and cleared
  its marks, those reports are on the map, and their lags (now minus ``received_at``, a few ms
  before the 202) go into ``meta/freshness#NN`` (NN = epoch minute mod 60): a histogram per
  minute, with log buckets 2^(i/4) ms (~19 % wide), so p50/p95 over recent minutes come from
  at most 60 small items read in one BatchGetItem. With the background pass on, "on the map"
  means the `all` layers at city zooms, what the map opens on. The web's grid cache
  (``GRID_CACHE_TTL``) adds up to that much before a reader sees the change.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.config.settings import Settings
from shared.store.grids import GridRepository
from shared.store.keys import META_PK

BUCKETS = 81  # 2^(i/4) ms for i < 80, i.e. up to ~14 minutes; the last one holds everything more
RING = 60


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def bucket_of(lag_ms: float) -> int:
    if lag_ms <= 1:
        return 0
    return min(BUCKETS - 1, int(4 * math.log2(lag_ms)))


def bucket_value(index: int) -> float:
    """A bucket's representative lag (its geometric middle), in ms."""
    return float(2 ** ((index + 0.5) / 4))


def quantile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(histogram))


class FreshnessLog:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    # --- lags (worker, after a recompute) ---------------------------------------------------
    def record(self, pending: dict[int, int], visible_at: float) -> list[tuple[float, int]]:
        """Add the lags of the covered reports to this minute's histogram; returns (ms, n)."""
        lags = [(max(0.0, visible_at * 1000 - (tick * 100 + 50)), n) for tick, n in pending.items()]
        histogram: dict[int, int] = {}
        for lag, n in lags:
            histogram[bucket_of(lag)] = histogram.get(bucket_of(lag), 0) + n
        if histogram:
            self._add_histogram(int(visible_at // 60), histogram)
        return lags

    def _add_histogram(self, minute: int, histogram: dict[int, int]) -> None:
        key = {"pk": {"S": META_PK}, "sk": {"S": f"freshness#{minute % RING:02d}"}}
        names = {f"#h{i}": f"h{i}" for i in histogram} | {"#m": "minute"}
        values = {f":h{i}": {"N": str(n)} for i, n in histogram.items()}
        for _ in range(3):
            try:  # the slot already holds this minute: add to it
                self._ddb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="ADD " + ", ".join(f"#h{i} :h{i}" for i in histogram),
                    ConditionExpression="#m = :m",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values | {":m": {"N": str(minute)}},
                )
                return
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
            try:  # the slot is empty or an hour old: start it over for this minute
                self._ddb.put_item(
                    TableName=self._table,
                    Item=key
                    | {"minute": {"N": str(minute)}}
                    | {f"h{i}": {"N": str(n)} for i, n in histogram.items()},
                    ConditionExpression="attribute_not_exists(pk) OR #m < :m",
                    ExpressionAttributeNames={"#m": "minute"},
                    ExpressionAttributeValues={":m": {"N": str(minute)}},
                )
                return
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
            # Another worker started the slot meanwhile (or it holds a later minute): retry.

    # --- reading (status) -----------------------------------------------------------------
    def summary(self, now: float, minutes: int) -> dict[str, Any]:
        current = int(now // 60)
        wanted = [current - i for i in range(min(minutes, RING))]
        keys = [{"pk": {"S": META_PK}, "sk": {"S": f"freshness#{m % RING:02d}"}} for m in wanted]
        page = self._ddb.batch_get_item(RequestItems={self._table: {"Keys": keys}})
        items = page.get("Responses", {}).get(self._table, [])
        histogram: dict[int, int] = {}
        for item in items:
            if int(item.get("minute", {}).get("N", "-1")) not in wanted:
                continue  # an older hour's minute in the same slot
            for name, value in item.items():
                if name.startswith("h") and name[1:].isdigit():
                    histogram[int(name[1:])] = histogram.get(int(name[1:]), 0) + int(value["N"])
        p50, p95 = quantile(histogram, 0.5), quantile(histogram, 0.95)
        return {
            "window_minutes": len(wanted),
            "reports": sum(histogram.values()),
            "p50_ms": None if p50 is None else round(p50),
            "p95_ms": None if p95 is None else round(p95),
        }


class StatusReader:
    """Collects the status; the web keeps an answer for ``cache_ttl`` seconds."""

    def __init__(
        self,
        sqs: Any,
        ddb: Any,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl: float = 0.0,
    ) -> None:
        self._sqs = sqs
        self._ddb = ddb
        self._settings = settings
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._cached and now - self._cached[0] < self._cache_ttl:
                return self._cached[1]
            answer = self.collect()
            self._cached = (now, answer)
            return answer

    def collect(self) -> dict[str, Any]:
        now = self._clock()
        out: dict[str, Any] = {"at": _iso(now), "unavailable": []}
        s = self._settings
        for key, name in (("queue", s.queue_name), ("dlq", s.dlq_name)):
            try:
                out[key] = self._depth(name)
            except (BotoCoreError, ClientError):
                self._urls.pop(name, None)
                out[key] = None
                out["unavailable"].append(key)
        try:
            grids = FreshnessLog(self._ddb, s.grids_table)
            last = self._ddb.get_item(
                TableName=s.grids_table,
                Key={"pk": {"S": META_PK}, "sk": {"S": "last_computed_at"}},
            ).get("Item")
            last_at = last["value"]["S"] if last else None
            out["last_computed_at"] = last_at
            out["last_computed_age_s"] = (
                round(now - datetime.fromisoformat(last_at).timestamp(), 1) if last_at else None
            )
            # One item per mark (`<partition>#<uuid>`): count the partitions, up to 100.
            keys = GridRepository(self._ddb, s.grids_table).dirty_keys(1000)
            marked = {key.split("#", 1)[0] for key in keys}
            out["dirty_partitions"] = min(len(marked), 100)
            out["freshness"] = grids.summary(now, s.status_window_minutes)
        except (BotoCoreError, ClientError):
            out.update(last_computed_at=None, last_computed_age_s=None, freshness=None)
            out.setdefault("dirty_partitions", None)
            out["unavailable"].append("tables")
        return out

    def _depth(self, name: str) -> dict[str, int]:
        if name not in self._urls:
            self._urls[name] = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self._urls[name],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
