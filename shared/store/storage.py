"""Repositories over the two DynamoDB tables; the only module that knows item shapes.

Reports table: one item per report, partitioned by a fine base tile (``pk = p#z/x/y``) so a
recompute reads only the reports near what changed; ids from an Idempotency-Key get an
``id#<id>`` guard item, written first, so a retried key never stores a second body;
``day#<date>`` items list the partitions that hold reports of that day, which is how rolling
windows find what to recompute.

Grids table: density tiles (``d#layer#z/x/y``), count tiles (``c#...``), dirty marks (one item
per mark, ``partition#uuid``), background marks (``kind#layer#uuid``: work a busy run leaves
for the background pass) and the small coordination items (flags, lease, metadata).
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.model.report import Report

GRID_SK = "g"
TILES_WRITTEN = "tiles-written"
"""The meta item rewritten after every write of tiles: the web's caches look at it to learn
that tiles changed (``web.grids.BlobCache``), one small read instead of re-reading tiles."""
META_PK = "meta"
"""The partition of the grids table's small named items (flags, the `tiles-written` beacon)."""
_BATCH_GET = 100
_BATCH_WRITE = 25
_PARALLEL = 8


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """What density needs of a report: never the description. The id tells a report that a
    run has read from one that a later mark brings (``Recomputer.run``)."""

    lon: float
    lat: float
    category: str
    occurred_at: datetime
    id: str = ""
    unit: bool = True
    """Counts towards the privacy threshold (``shared.geo.privacy``): the first stored report of
    its submitter's pseudonym, or a report without one."""

    @classmethod
    def of(cls, report: Report, unit: bool = True) -> StoredPoint:
        return cls(report.lon, report.lat, report.category, report.occurred_at, report.id, unit)


_POINT = struct.Struct("<16sddqB")
"""A report as a recompute reads it (a report item's `pt`, a dirty mark's `pts`): id (uuid
bytes), lon, lat, occurred_at (microseconds since the epoch, exact), then the length of the
category's UTF-8 name, which follows, with bit 7 set for a report that is not a unit (category
ids are short ASCII, so older items, all units, read the same)."""
_NOT_UNIT = 0x80


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A stored report as an operator selects reports to remove: where, what, when (never the
    description)."""

    id: str
    partition: str
    lon: float
    lat: float
    category: str
    occurred_at: datetime
    received_at: datetime


def pack_points(points: Iterable[StoredPoint]) -> bytes:
    out = bytearray()
    for p in points:
        micros = (p.occurred_at - _EPOCH) // timedelta(microseconds=1)
        name = p.category.encode()
        flag = 0 if p.unit else _NOT_UNIT
        out += _POINT.pack(uuid.UUID(p.id).bytes, p.lon, p.lat, micros, len(name) | flag) + name
    return bytes(out)


def unpack_points(blob: bytes) -> tuple[StoredPoint, ...]:
    out = []
    at = 0
    while at < len(blob):
        raw_id, lon, lat, micros, size = _POINT.unpack_from(blob, at)
        at += _POINT.size
        unit = not size & _NOT_UNIT
        size &= ~_NOT_UNIT
        category = blob[at : at + size].decode()
        at += size
        occurred = _EPOCH + timedelta(microseconds=micros)
        rid = str(uuid.UUID(bytes=raw_id))
        out.append(StoredPoint(lon, lat, category, occurred, rid, unit))
    return tuple(out)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Marker:
    partition: str
    layers: frozenset[str]
    keys: tuple[str, ...] = ()
    """The stored mark items this marker merges (deleted once the partition is recomputed)."""
    acked: tuple[int, ...] = ()
    """Acknowledgement ticks (100 ms since the epoch) of the reports behind those marks."""
    points: tuple[StoredPoint, ...] | None = None
    """The reports those marks were made for, as stored; None if a mark does not carry them
    (a window roll, or a report that was not stored from this very message): the partition
    is then read afresh."""


MARK_PAGE = 1000
"""Mark items read per query (~100 bytes each); a partition cut by the page is simply
recomputed again for its remaining marks."""


OVERVIEW = "overview"
FINE = "fine"


@dataclass(frozen=True)
class BackgroundMarker:
    layer: str
    partitions: frozenset[str]
    keys: tuple[str, ...]
    """The stored items this marker merges (deleted once the layer is recomputed)."""
    kind: str = OVERVIEW
    """`overview`: the layer's overview zooms; `fine`: a category layer's finer zooms."""


def partition_key(z: int, x: int, y: int) -> str:
    return f"{z}/{x}/{y}"


def parse_partition(key: str) -> tuple[int, int, int]:
    z, x, y = (int(part) for part in key.split("/"))
    return z, x, y


def grid_key(kind: str, layer: str, z: int, x: int, y: int) -> str:
    return f"{kind}#{layer}#{z}/{x}/{y}"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ReportRepository:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def store(self, report: Report, partition: str) -> bool:
        return self.store_many([(report, partition)])[0]

    def claim_units(self, reports: list[Report]) -> list[bool]:
        """Which reports count towards the privacy threshold: the first of each pseudonym.

        One conditional write per report with a pseudonym: ``sub#<pseudonym>`` names the
        report that claimed it first, so a redelivery of that report claims it again and any
        other report of the same pseudonym (the same client that day) is not a unit. The
        claim holds the pseudonym and a report id, never an address. Reports without a
        pseudonym are units. Within a batch only the first report of a pseudonym claims (the
        emulator's conditional writes race between threads); the claims run concurrently."""
        first: dict[str, int] = {}
        for i, report in enumerate(reports):
            if report.submitter:
                first.setdefault(report.submitter, i)
        claimers = sorted(first.values())
        if len(claimers) <= 1:
            won = [self._claim(reports[i]) for i in claimers]
        else:
            with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(claimers))) as pool:
                won = list(pool.map(lambda i: self._claim(reports[i]), claimers))
        winners = {i for i, ok in zip(claimers, won, strict=True) if ok}
        return [not r.submitter or i in winners for i, r in enumerate(reports)]

    def _claim(self, report: Report) -> bool:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"sub#{report.submitter}"},
                    "sk": {"S": "sub"},
                    "rid": {"S": report.id},
                },
                ConditionExpression="attribute_not_exists(pk) OR rid = :id",
                ExpressionAttributeValues={":id": {"S": report.id}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def store_many(
        self, reports: list[tuple[Report, str]], units: list[bool] | None = None
    ) -> list[bool]:
        """Write each report once; False where a keyed id was stored before.

        Reports go in batch writes (25 items a request) with their ``day#`` entries. An id
        derived from an Idempotency-Key is guarded first by one conditional write, so a retry
        with another body can never store a second report; a report whose guard existed is
        completed with a write only if absent, so a delivery that died between the two writes
        is finished by the next one and the first body always wins. Random ids (the web's
        default) skip the guard: a redelivery rewrites the very same item, and its count of
        "stored" is then an over-count of what is in fact one report. Cheaper than a
        transaction per report on DynamoDB, and far cheaper on the emulator.
        """
        # An id twice in one batch (a client's retry that joined the same batch): the first
        # decides, the others are dropped like a retry with another body. Guarded together,
        # both could pass (the emulator's conditional writes race between threads), and one
        # batch write may not hold a key twice.
        first = {report.id: i for i, (report, _) in reversed(list(enumerate(reports)))}
        keyed = [i for i in sorted(first.values()) if _keyed(reports[i][0].id)]
        if len(keyed) <= 1:
            guarded = [self._guard(*reports[i]) for i in keyed]
        else:
            with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(keyed))) as pool:
                guarded = list(pool.map(lambda i: self._guard(*reports[i]), keyed))
        # Random ids need no guard: only a redelivery of the same message repeats one, and
        # writing the same item again changes nothing (the density counts it once).
        states: list[bool | None] = [
            True if first[r.id] == i else None for i, (r, _) in enumerate(reports)
        ]
        for i, state in zip(keyed, guarded, strict=True):
            states[i] = state
        writes: list[dict[str, Any]] = []
        days: set[tuple[str, str]] = set()
        unit_of = units if units is not None else [True] * len(reports)
        for (report, partition), state, unit in zip(reports, states, unit_of, strict=True):
            if state is None:
                continue  # the same id was stored at another place: the first one wins
            days.add((report.occurred_at.date().isoformat(), partition))
            if state:
                writes.append(self._item(report, partition, unit))
                continue
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=self._item(report, partition, unit),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        writes.extend({"pk": {"S": f"day#{d}"}, "sk": {"S": p}} for d, p in sorted(days))
        write_all(self._ddb, self._table, [{"PutRequest": {"Item": item}} for item in writes])
        return [state is True for state in states]

    def _guard(self, report: Report, partition: str) -> bool | None:
        """True: a new id; False: seen before at this partition; None: seen at another."""
        try:
            old = self._ddb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"id#{report.id}"},
                    "sk": {"S": "id"},
                    "partition": {"S": partition},
                },
                ConditionExpression="attribute_not_exists(pk) OR #p = :p",
                ExpressionAttributeNames={"#p": "partition"},
                ExpressionAttributeValues={":p": {"S": partition}},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return old is None

    @staticmethod
    def _item(report: Report, partition: str, unit: bool = True) -> dict[str, Any]:
        item = {
            "pk": {"S": f"p#{partition}"},
            "sk": {"S": report.id},
            "lat": {"N": repr(report.lat)},
            "lon": {"N": repr(report.lon)},
            "category": {"S": report.category},
            "occurred_at": {"S": report.occurred_at.isoformat()},
            "received_at": {"S": report.received_at.isoformat()},
            # What a recompute reads, packed as the marks carry it: one attribute to read a
            # report by instead of five (a partition's Query costs the store and the client per
            # attribute value returned).
            "pt": {"B": pack_points([StoredPoint.of(report, unit)])},
        }
        if report.submitter:
            item["sub"] = {"S": report.submitter}
        if report.description:
            item["description"] = {"S": report.description}
        return item

    def points(self, partition: str) -> list[StoredPoint]:
        out: list[StoredPoint] = []
        for item in self._query(f"p#{partition}", projection="pt"):
            if "pt" not in item:
                return self._points_by_attribute(partition)  # an item stored without `pt`
            out.extend(unpack_points(item["pt"]["B"]))
        return out

    def _points_by_attribute(self, partition: str) -> list[StoredPoint]:
        out = []
        for item in self._query(f"p#{partition}", projection="sk, lat, lon, category, occurred_at"):
            out.append(
                StoredPoint(
                    lon=float(item["lon"]["N"]),
                    lat=float(item["lat"]["N"]),
                    category=item["category"]["S"],
                    occurred_at=datetime.fromisoformat(item["occurred_at"]["S"]),
                    id=item["sk"]["S"],
                )
            )
        return out

    def points_many(self, partitions: list[str]) -> dict[str, list[StoredPoint]]:
        """Partitions queried concurrently: a recompute waits on round trips, not on CPU."""
        if len(partitions) <= 1:
            return {p: self.points(p) for p in partitions}
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            return dict(zip(partitions, pool.map(self.points, partitions), strict=True))

    def partition_of_id(self, report_id: str) -> str | None:
        """Where a report is stored (a full scan unless it is keyed: for tests and ops only)."""
        item = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": f"id#{report_id}"}, "sk": {"S": "id"}}
        ).get("Item")
        if item:
            return str(item["partition"]["S"])
        for pk, sk in self._report_keys():
            if sk == report_id:
                return pk[2:]
        return None

    def delete_many(self, report_ids: Iterable[str]) -> dict[str, list[str]]:
        """Delete reports by id, and the guards of keyed ones; returns where each id found was
        stored. A full scan (an id does not say where it was stored): for the ops command,
        which removes reports on request, never for the services."""
        wanted = set(report_ids)
        found: dict[str, list[str]] = {}
        for pk, sk in self._report_keys():
            if sk in wanted:
                found.setdefault(sk, []).append(pk[2:])
        # A guard can outlive its report (a delivery that died between the two writes).
        self._delete(found, guards=wanted)
        return found

    def rows(self) -> Iterator[ReportRow]:
        """Every stored report's place, category and times (a full scan: for the ops command's
        removal by area and time, never for the services)."""
        projection = "pk, sk, lat, lon, category, occurred_at, received_at"
        for item in self._report_items(projection):
            yield ReportRow(
                id=item["sk"]["S"],
                partition=item["pk"]["S"][2:],
                lon=float(item["lon"]["N"]),
                lat=float(item["lat"]["N"]),
                category=item["category"]["S"],
                occurred_at=datetime.fromisoformat(item["occurred_at"]["S"]),
                received_at=datetime.fromisoformat(item["received_at"]["S"]),
            )

    def delete_rows(self, rows: Iterable[ReportRow]) -> dict[str, list[str]]:
        """Delete the reports `rows` found, and the guards of keyed ones; returns where each
        was stored, as :meth:`delete_many` does."""
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.id, []).append(row.partition)
        self._delete(found, guards={rid for rid in found if _keyed(rid)})
        return found

    def _delete(self, found: dict[str, list[str]], guards: Iterable[str]) -> None:
        requests = [
            {"DeleteRequest": {"Key": {"pk": {"S": f"p#{partition}"}, "sk": {"S": rid}}}}
            for rid, partitions in sorted(found.items())
            for partition in sorted(set(partitions))
        ]
        requests += [
            {"DeleteRequest": {"Key": {"pk": {"S": f"id#{rid}"}, "sk": {"S": "id"}}}}
            for rid in sorted(guards)
        ]
        write_all(self._ddb, self._table, requests)

    def partitions_of_day(self, day: str) -> list[str]:
        return [item["sk"]["S"] for item in self._query(f"day#{day}", projection="sk")]

    def ids(self) -> list[str]:
        """The id of every stored report item, repeats included (a full scan: for tests and
        the rebuild command only)."""
        return [sk for _, sk in self._report_keys()]

    def _report_keys(self) -> Iterator[tuple[str, str]]:
        for item in self._report_items("pk, sk"):
            yield item["pk"]["S"], item["sk"]["S"]

    def partitions(self) -> list[str]:
        """Every partition holding reports (a full scan: for rebuilds only)."""
        return sorted({item["pk"]["S"][2:] for item in self._report_items("pk")})

    def _report_items(self, projection: str) -> Iterator[dict[str, Any]]:
        """The report items of the whole table (not guards or day entries), page after page."""
        kwargs: dict[str, Any] = {"TableName": self._table, "ProjectionExpression": projection}
        while True:
            page = self._ddb.scan(**kwargs)
            for item in page["Items"]:
                if item["pk"]["S"].startswith("p#"):
                    yield item
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query(self, pk: str, projection: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": projection,
            # A run that has read a mark must find the reports written before it.
            "ConsistentRead": True,
        }
        yield from query_all(self._ddb, kwargs)


class GridRepository:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    # --- grids ---------------------------------------------------------------------------
    def get_many(
        self, keys: Iterable[str], *, consistent: bool = False
    ) -> dict[str, tuple[bytes, str]]:
        """{key: (blob, computed_at)} for the keys that exist; batches run concurrently.

        `consistent`: a strongly consistent read, for the recompute, which writes back the
        tiles it reads. An eventually consistent read may return a tile as it was before the
        previous chunk's write, and writing it back would undo that write where this chunk
        does not recompute. Viewers can read the eventually consistent copy (half the cost).
        """
        wanted = list(dict.fromkeys(keys))
        chunks = [wanted[i : i + _BATCH_GET] for i in range(0, len(wanted), _BATCH_GET)]
        found: dict[str, tuple[bytes, str]] = {}
        for part in _parallel(lambda chunk: self._get_chunk(chunk, consistent), chunks):
            found.update(part)
        return found

    def _get_chunk(self, keys: list[str], consistent: bool) -> dict[str, tuple[bytes, str]]:
        found: dict[str, tuple[bytes, str]] = {}
        request: dict[str, Any] = {
            self._table: {
                "Keys": [{"pk": {"S": k}, "sk": {"S": GRID_SK}} for k in keys],
                "ProjectionExpression": "pk, g, computed_at",
                "ConsistentRead": consistent,
            }
        }
        for attempt in range(8):
            page = self._ddb.batch_get_item(RequestItems=request)
            for item in page["Responses"].get(self._table, []):
                found[item["pk"]["S"]] = (item["g"]["B"], item["computed_at"]["S"])
            request = page.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RuntimeError("DynamoDB left keys unprocessed after retries")

    def put_many(self, blobs: dict[str, bytes], computed_at: str) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": key},
                        "sk": {"S": GRID_SK},
                        "g": {"B": blob},
                        "computed_at": {"S": computed_at},
                    }
                }
            }
            for key, blob in blobs.items()
        ]
        write_all(self._ddb, self._table, requests)
        if requests:  # after the tiles: a reader that sees it changed fetches them anew
            self.put_meta(TILES_WRITTEN, f"{computed_at} {uuid.uuid4().hex[:8]}")

    # --- dirty markers ---------------------------------------------------------------------
    def mark_dirty(self, partition: str, layers: Iterable[str]) -> None:
        self.mark_dirty_many({partition: set(layers)})

    def mark_dirty_many(
        self,
        marks: dict[str, set[str]],
        acked: dict[str, list[int]] | None = None,
        points: dict[str, list[StoredPoint]] | None = None,
    ) -> None:
        """One new item per mark, in batch writes: no read-modify-write, so marks made while a
        run reads the markers are new items that the run does not delete. `acked` carries the
        acknowledgement ticks (100 ms since the epoch) of the reports behind each mark, so the
        run that clears it knows whose freshness lag it has just ended. `points` carries the
        reports themselves (packed, ~45 bytes each), so a run that has read the partition
        already adds them instead of querying it again."""
        items = []
        for partition, layers in sorted(marks.items()):
            if not layers:
                continue
            item: dict[str, Any] = {
                "pk": {"S": "dirty"},
                "sk": {"S": f"{partition}#{uuid.uuid4().hex}"},
                "layers": {"SS": sorted(layers)},
            }
            ticks = (acked or {}).get(partition)
            if ticks:
                item["acked"] = {"L": [{"N": str(t)} for t in ticks]}
            carried = (points or {}).get(partition)
            if carried:
                item["pts"] = {"B": pack_points(carried)}
            items.append(item)
        requests = [{"PutRequest": {"Item": item}} for item in items]
        write_all(self._ddb, self._table, requests)

    def has_dirty(self) -> bool:
        """Whether any mark waits: one item read, where `dirty_markers` reads a page of them
        (the emulator's cost is per item returned, ~0.7 ms each on a slow box)."""
        return bool(self.dirty_keys(1))

    def dirty_keys(self, limit: int) -> list[str]:
        """The keys (`<partition>#<uuid>`) of up to `limit` marks, nothing else read."""
        page = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "dirty"}},
            ProjectionExpression="sk",
            Limit=limit,
        )
        return [item["sk"]["S"] for item in page["Items"]]

    def dirty_markers(self, limit: int = 500, after: str = "") -> list[Marker]:
        """Up to `limit` partitions, each with the union of its marks' layers; with `after`,
        only partitions that sort after that one (a run goes round, see ingest.recompute)."""
        condition, values = "pk = :pk", {":pk": {"S": "dirty"}}
        if after:
            # Marks are `<partition>#<hex uuid>`; "~" sorts after every hex digit.
            condition += " AND sk > :after"
            values[":after"] = {"S": f"{after}#~"}
        page = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            Limit=MARK_PAGE,
        )
        grouped: dict[str, tuple[set[str], list[str], list[int]]] = {}
        carried: dict[str, list[StoredPoint] | None] = {}
        for item in page["Items"]:
            sk = item["sk"]["S"]
            partition = sk.split("#", 1)[0]
            if partition not in grouped and len(grouped) == limit:
                break
            layers, keys, acked = grouped.setdefault(partition, (set(), [], []))
            layers.update(item["layers"]["SS"])
            keys.append(sk)
            acked.extend(int(v["N"]) for v in item.get("acked", {}).get("L", []))
            known = carried.setdefault(partition, [])
            blob = item.get("pts", {}).get("B")
            if blob is None:
                carried[partition] = None  # one mark without its reports: read afresh
            elif known is not None:
                known.extend(unpack_points(blob))
        return [
            Marker(
                partition, frozenset(layers), tuple(keys), tuple(acked), _tuple(carried[partition])
            )
            for partition, (layers, keys, acked) in grouped.items()
        ]

    def clear_markers(self, markers: Iterable[Marker]) -> None:
        """Delete exactly the marks that were read; later marks stay for the next run."""
        requests = [
            {"DeleteRequest": {"Key": {"pk": {"S": "dirty"}, "sk": {"S": key}}}}
            for marker in markers
            for key in marker.keys
        ]
        write_all(self._ddb, self._table, requests)

    # --- background markers ------------------------------------------------------------------
    def mark_background(self, by_layer: dict[str, set[str]], kind: str) -> None:
        """Partitions whose tiles of a layer (`kind`: its overview or its fine zooms) wait for
        the next background pass: a new item per layer (`kind#layer#uuid`), in batch writes,
        like the dirty marks. A busy run's first chunk marks some fifty (kind, layer) pairs: as
        one UpdateItem each (a set ADD on one item per layer) they were a sixth of the run's
        time (1.6-2.2 s of an 11 s run at 100 reports/s); in batches of 25 they are two or
        three calls. No read-modify-write, so clearing deletes exactly what was read."""
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": "background"},
                        "sk": {"S": f"{kind}#{layer}#{uuid.uuid4().hex}"},
                        "partitions": {"SS": sorted(partitions)},
                    }
                }
            }
            for layer, partitions in sorted(by_layer.items())
            if partitions
        ]
        write_all(self._ddb, self._table, items)

    def background_markers(self, limit: int = 100, page: int = MARK_PAGE) -> list[BackgroundMarker]:
        """Up to `limit` (kind, layer) pairs from the first `page` items, each with the union of
        its items' partitions; a pair cut by the page is simply done again for its remaining
        items. A small page for a piece of work: under sustained load the items pile up (each
        run marks each layer anew) and the emulator's cost is per item returned."""
        found = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "background"}},
            Limit=page,
        )
        grouped: dict[tuple[str, str], tuple[set[str], list[str]]] = {}
        for item in found["Items"]:
            sk = item["sk"]["S"]
            kind, layer = sk.split("#", 2)[:2]  # also the `kind#layer` items of old versions
            if (kind, layer) not in grouped and len(grouped) == limit:
                break
            partitions, keys = grouped.setdefault((kind, layer), (set(), []))
            partitions.update(item["partitions"]["SS"])
            keys.append(sk)
        return [
            BackgroundMarker(layer, frozenset(partitions), tuple(keys), kind)
            for (kind, layer), (partitions, keys) in grouped.items()
        ]

    def clear_background(self, marker: BackgroundMarker) -> None:
        """Delete exactly the items that were read; items added meanwhile stay."""
        requests = [
            {"DeleteRequest": {"Key": {"pk": {"S": "background"}, "sk": {"S": key}}}}
            for key in marker.keys
        ]
        write_all(self._ddb, self._table, requests)

    # --- coordination ----------------------------------------------------------------------
    def acquire(self, name: str, ttl_s: float, owner: str, renew: bool = False) -> bool:
        """A flag or lease that expires by itself, so a killed holder never blocks for long.
        With `renew`, its holder may take it again (and extend it)."""
        now = time.time()
        condition = "attribute_not_exists(pk) OR expires < :now"
        values = {":now": {"N": f"{now:.3f}"}}
        names = {}
        if renew:
            condition += " OR #o = :owner"
            values[":owner"] = {"S": owner}
            names = {"ExpressionAttributeNames": {"#o": "owner"}}
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": "flag"},
                    "sk": {"S": name},
                    "owner": {"S": owner},
                    "expires": {"N": f"{now + ttl_s:.3f}"},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **names,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release(self, name: str, owner: str | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs = {
                "ConditionExpression": "#o = :owner",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            }
        try:
            self._ddb.delete_item(
                TableName=self._table, Key={"pk": {"S": "flag"}, "sk": {"S": name}}, **kwargs
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def get_meta(self, name: str) -> str | None:
        item = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": META_PK}, "sk": {"S": name}}
        ).get("Item")
        return item["value"]["S"] if item else None

    def put_meta(self, name: str, value: str) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item={"pk": {"S": META_PK}, "sk": {"S": name}, "value": {"S": value}},
        )


def query_all(ddb: Any, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, page after page."""
    while True:
        page = ddb.query(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs = kwargs | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _tuple(points: list[StoredPoint] | None) -> tuple[StoredPoint, ...] | None:
    return None if points is None else tuple(points)


def _keyed(report_id: str) -> bool:
    """Ids derived from an Idempotency-Key (uuid5) can come back with another body."""
    return uuid.UUID(report_id).version == 5


def write_all(ddb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    chunks = [requests[i : i + _BATCH_WRITE] for i in range(0, len(requests), _BATCH_WRITE)]
    list(_parallel(lambda chunk: _batch_write(ddb, table, chunk), chunks))


def _batch_write(ddb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: requests}
    for attempt in range(8):
        page = ddb.batch_write_item(RequestItems=pending)
        pending = page.get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise RuntimeError("DynamoDB left writes unprocessed after retries")


def _parallel(func: Any, chunks: list[Any]) -> Iterator[Any]:
    if len(chunks) <= 1:
        yield from map(func, chunks)
        return
    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
        yield from pool.map(func, chunks)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
