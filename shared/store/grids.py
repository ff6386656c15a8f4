"""The grids table: tiles, the marks of work waiting, and small coordination items.

Density tiles (``d#layer#z/x/y``) and count tiles (``c#...``); dirty marks (one item per mark,
``partition#uuid``); background marks (``kind#layer#uuid``: work a busy run leaves for the
background pass); flags and leases, and the named metadata items (``META_PK``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.store.dynamo import conditional_failed, get_all, write_all
from shared.store.keys import GRID_SK, META_PK, OVERVIEW, TILES_WRITTEN
from shared.store.points import StoredPoint, pack_points, unpack_points

SUMMARY = "summary"
"""The meta item of where the page opens (``workers.summary``)."""


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


@dataclass(frozen=True)
class BackgroundMarker:
    layer: str
    partitions: frozenset[str]
    keys: tuple[str, ...]
    """The stored items this marker merges (deleted once the layer is recomputed)."""
    kind: str = OVERVIEW
    """`overview`: the layer's overview zooms; `fine`: a category layer's finer zooms."""


def _stamp(item: dict[str, Any]) -> str:
    """A stored tile's version: its computed_at and write id (older items: computed_at)."""
    write = item.get("w", {}).get("S")
    return f"{item['computed_at']['S']} {write}" if write else str(item["computed_at"]["S"])


def stamp_time(stamp: str) -> str:
    """The computed_at of a tile's stamp (``GridRepository.get_many``)."""
    return stamp.split(" ", 1)[0]


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
        wanted = [{"pk": {"S": k}, "sk": {"S": GRID_SK}} for k in dict.fromkeys(keys)]
        items = get_all(
            self._ddb, self._table, wanted, "pk, g, computed_at, w", consistent=consistent
        )
        return {item["pk"]["S"]: (item["g"]["B"], _stamp(item)) for item in items}

    def put_many(self, blobs: dict[str, bytes], computed_at: str) -> None:
        """The tiles, each with the run's computed_at and this write's id (`w`): a run may
        write a tile twice (a chunk, then a later chunk or its background pass), and readers
        key their caches by the stamp (``stamp_time``), so it must change with every write."""
        write = uuid.uuid4().hex[:8]
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": key},
                        "sk": {"S": GRID_SK},
                        "g": {"B": blob},
                        "computed_at": {"S": computed_at},
                        "w": {"S": write},
                    }
                }
            }
            for key, blob in blobs.items()
        ]
        write_all(self._ddb, self._table, requests)
        if requests:  # after the tiles: a reader that sees it changed fetches them anew
            self.put_meta(TILES_WRITTEN, f"{computed_at} {write}")

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
            if conditional_failed(exc):
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
            if not conditional_failed(exc):
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

    def get_summary(self) -> str | None:
        """The page's opening summary (``workers.summary``), as the worker kept it."""
        return self.get_meta(SUMMARY)

    def put_summary(self, value: str) -> None:
        self.put_meta(SUMMARY, value)


def _tuple(points: list[StoredPoint] | None) -> tuple[StoredPoint, ...] | None:
    return None if points is None else tuple(points)
