"""Reports a recompute run has read, kept by its worker process for the runs after it.

A run reads every partition it recomputes (and its neighbours) once, then adds the reports that
dirty marks carry (``Recomputer.run``). Without more, the next run starts cold: its first chunk
queried every partition again, ~2.4 s where a warm chunk takes ~0.8 s, and under steady load
that first chunk was the freshness tail (bench/freshness.py, 100 reports/s: lags to 5 s).

Runs take turns between pool processes (and hosts), so a process's reads miss what the runs
in between consumed: their marks are deleted. Each run therefore numbers itself (one counter,
taken under the lease) and logs, per chunk, what the marks it is about to delete carried: the
reports by partition, and the partitions whose marks carried none (those are read afresh). A
process that resumes replays the log of the runs since its own and is as warm as if it had
run them. Its reads then hold every report stored before them, plus every carried report of a
deleted mark; every other report still has its mark waiting (marks are deleted only after
their log entry is written).

Also bounded: a cache that is too many runs behind (the log is trimmed), holds too many
reports, or a partition read too long ago, is dropped and read afresh, so a run by an older
version that did not log heals within ``MAX_AGE_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared.store.dynamo import query_all, write_all
from shared.store.grids import Marker
from shared.store.keys import META_PK
from shared.store.points import StoredPoint, pack_points, unpack_points

RUN_SEQ = "run-seq"
LOG_PK = "runlog"
KEEP_RUNS = 32
"""Runs kept in the log; a process that last ran longer ago than that starts cold."""
MAX_AGE_S = 300.0
"""A partition read longer ago is read again (bounds any drift, e.g. during a deploy)."""
MAX_ENTRY_BYTES = 300_000
"""Below DynamoDB's 400 KB item limit: a larger chunk logs its partitions as dropped."""


class RunLog:
    """The run counter and the log of consumed marks (items `runlog / <run>#<chunk>`)."""

    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def next_run(self) -> int:
        out = self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": META_PK}, "sk": {"S": RUN_SEQ}},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "seq"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(out["Attributes"]["seq"]["N"])

    def record(self, run: int, chunk: int, markers: Iterable[Marker]) -> None:
        carried: dict[str, bytes] = {}
        dropped: list[str] = []
        for marker in markers:
            if marker.points is None:
                dropped.append(marker.partition)
            else:
                carried[marker.partition] = pack_points(marker.points)
        if sum(len(blob) + len(key) for key, blob in carried.items()) > MAX_ENTRY_BYTES:
            dropped += list(carried)
            carried = {}
        item: dict[str, Any] = {"pk": {"S": LOG_PK}, "sk": {"S": _sk(run, chunk)}}
        if carried:
            item["pts"] = {"M": {key: {"B": blob} for key, blob in carried.items()}}
        if dropped:
            item["dropped"] = {"SS": sorted(set(dropped))}
        self._ddb.put_item(TableName=self._table, Item=item)

    def between(
        self, after: int, before: int
    ) -> Iterator[tuple[dict[str, tuple[StoredPoint, ...]], list[str]]]:
        """Entries of the runs numbered after `after` and before `before`, in order."""
        if before - after < 2:
            return  # no run between (and DynamoDB refuses a BETWEEN whose bounds are crossed)
        bounds = {":lo": _sk(after + 1, 0), ":hi": _sk(before - 1, 99999)}
        for item in self._query("sk BETWEEN :lo AND :hi", bounds):
            pts = item.get("pts", {}).get("M", {})
            yield (
                {key: unpack_points(value["B"]) for key, value in pts.items()},
                item.get("dropped", {}).get("SS", []),
            )

    def trim(self, before: int) -> None:
        """Delete the entries of runs numbered before `before`."""
        keys = [
            item["sk"]["S"] for item in self._query("sk < :hi", {":hi": _sk(before, 0)}, keys=True)
        ]
        requests = [
            {"DeleteRequest": {"Key": {"pk": {"S": LOG_PK}, "sk": {"S": sk}}}} for sk in keys
        ]
        write_all(self._ddb, self._table, requests)

    def _query(self, condition: str, values: dict[str, str], keys: bool = False) -> Iterator[Any]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": {":pk": {"S": LOG_PK}}
            | {name: {"S": value} for name, value in values.items()},
            "ConsistentRead": True,
        }
        if keys:
            kwargs["ProjectionExpression"] = "sk"
        yield from query_all(self._ddb, kwargs)


def _sk(run: int, chunk: int) -> str:
    return f"{max(run, 0):012d}#{chunk:05d}"


class PointCache:
    """One worker process's reads, carried from one of its runs to its next."""

    def __init__(
        self,
        log: RunLog,
        max_reports: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._max = max_reports
        self._clock = clock
        self.points: dict[str, list[StoredPoint]] = {}
        self._read_at: dict[str, float] = {}
        self._run: int | None = None
        self._chunk = 0
        self._started = 0.0

    @property
    def run(self) -> int | None:
        """The number of this process's last run."""
        return self._run

    def begin(self) -> dict[str, list[StoredPoint]]:
        """Called under the lease: numbers the run and returns its `seen`, warm if it can be."""
        run = self._log.next_run()
        now = self._clock()
        points = self.points
        if self._run is None or run - self._run > KEEP_RUNS:
            points.clear()
        else:
            for carried, dropped in self._log.between(self._run, run):
                for key, new in carried.items():
                    if key in points:
                        ids = {p.id for p in points[key]}
                        points[key] = points[key] + [p for p in new if p.id not in ids]
                for key in dropped:
                    points.pop(key, None)
        # What the last run read it read after it started: an age no smaller than the truth.
        for key in points.keys() - self._read_at.keys():
            self._read_at[key] = self._started
        for key in [
            k for k, at in self._read_at.items() if k not in points or now - at > MAX_AGE_S
        ]:
            points.pop(key, None)
            del self._read_at[key]
        if sum(len(v) for v in points.values()) > self._max:
            points.clear()
            self._read_at.clear()
        self._run, self._chunk, self._started = run, 0, now
        if run > KEEP_RUNS:
            self._log.trim(run - KEEP_RUNS)
        return points

    def consumed(self, markers: list[Marker]) -> None:
        """Before the marks are deleted: what they carried, for the processes that run next
        (this process's own `seen` is updated by the run itself)."""
        assert self._run is not None, "begin() first"
        self._log.record(self._run, self._chunk, markers)
        self._chunk += 1
