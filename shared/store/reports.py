"""The reports table: one item per report, and the items that keep it stored once.

Each report is one item partitioned by a fine base tile (``pk = p#z/x/y``) so a recompute reads
only the reports near what changed; ids from an Idempotency-Key get an ``id#<id>`` guard item,
written first, so a retried key never stores a second body; ``sub#<pseudonym>`` items name the
first report of each submitter's pseudonym (the privacy threshold's units); ``day#<date>`` items
list the partitions that hold reports of that day, which is how rolling windows find what to
recompute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.model.report import Report
from shared.store.dynamo import PARALLEL, conditional_failed, query_all, write_all
from shared.store.points import StoredPoint, pack_points, unpack_points


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
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(claimers))) as pool:
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
            if conditional_failed(exc):
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
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(keyed))) as pool:
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
                if not conditional_failed(exc):
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
            if conditional_failed(exc):
                return None
            raise
        return old is None

    @staticmethod
    def _item(report: Report, partition: str, unit: bool = True) -> dict[str, Any]:
        point = StoredPoint.of(report, unit)
        light, days = point.time_name.split("-")
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
            "pt": {"B": pack_points([point])},
            # When it happened, derived once here (``shared.model.when``): the export and an
            # operator read it; the recompute reads it from `pt`.
            "light": {"S": light},
            "days": {"S": days},
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
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
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

    def backup_rows(self) -> Iterator[tuple[ReportRow, bool]]:
        """Every stored report as a backup keeps it, with whether it counts towards the privacy
        threshold (never its pseudonym or description): a paged full scan, one row at a time,
        so a backup's memory does not grow with the table (for the export command only)."""
        projection = "pk, sk, lat, lon, category, occurred_at, received_at, pt"
        for item in self._report_items(projection):
            packed = unpack_points(item["pt"]["B"]) if "pt" in item else []
            row = ReportRow(
                id=item["sk"]["S"],
                partition=item["pk"]["S"][2:],
                lon=float(item["lon"]["N"]),
                lat=float(item["lat"]["N"]),
                category=item["category"]["S"],
                occurred_at=datetime.fromisoformat(item["occurred_at"]["S"]),
                received_at=datetime.fromisoformat(item["received_at"]["S"]),
            )
            yield row, all(p.unit for p in packed)

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


def _keyed(report_id: str) -> bool:
    """Ids derived from an Idempotency-Key (uuid5) can come back with another body."""
    return uuid.UUID(report_id).version == 5
