"""The in-memory tables of bench/ingest.py (a helper, not a benchmark): DynamoDB's semantics
and cost shape, mirroring ``shared/store/``, every request booked to a ``Meter``. Keep them in
step with the real repositories: the counts are only as true as they."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable

from ingest_units import Cost, Item, Meter, item_size, rru

from shared.model.report import Report
from shared.store.grids import MARK_PAGE, BackgroundMarker, GridRepository, Marker
from shared.store.keys import GRID_SK
from shared.store.points import StoredPoint, pack_points
from shared.store.reports import (
    ReportRepository,
    _keyed,  # the stand-in must guard exactly the ids the real store guards
)
from workers import ingest, recompute
from workers.background import BACKGROUND_SCHEDULED

FLAG_KIND = {
    ingest.SCHEDULED: "scheduled",
    recompute.LEASE: "lease",
    BACKGROUND_SCHEDULED: "bg-flag",
    recompute.WAITING: "scheduled",
}


# --- stand-ins -----------------------------------------------------------------------------------
class MemoryReports(ReportRepository):
    """The reports table: guards, report items (points and sizes) per partition, day items."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.partitions_: dict[str, list[StoredPoint]] = {}
        self.bytes_: dict[str, int] = defaultdict(int)  # report item bytes per partition
        self.guards: dict[str, str] = {}  # id -> partition
        self.stored: set[tuple[str, str]] = set()  # (partition, id) of report items
        self.days: set[tuple[str, str]] = set()
        self.claims: dict[str, str] = {}  # pseudonym -> the report that claimed it

    def claim_units(self, reports: list[Report]) -> list[bool]:
        """As ReportRepository.claim_units: one conditional write per report with a
        pseudonym, which fails for every report of a pseudonym after its first."""
        out = []
        for report in reports:
            if not report.submitter:
                out.append(True)
                continue
            holder = self.claims.setdefault(report.submitter, report.id)
            item: Item = {
                "pk": {"S": f"sub#{report.submitter}"},
                "sk": {"S": "sub"},
                "rid": {"S": report.id},
            }
            if holder == report.id:
                self.meter.write("claim", item_size(item))
            else:
                self.meter.failed("claim")
            out.append(holder == report.id)
        return out

    def store_many(
        self, reports: list[tuple[Report, str]], units: list[bool] | None = None
    ) -> list[bool]:
        """As ReportRepository.store_many: a guard for keyed ids only, then the report item
        (for a random id, a redelivery rewrites the same item) and its day item."""
        states = [self._guard(*pair) if _keyed(pair[0].id) else True for pair in reports]
        days: set[tuple[str, str]] = set()
        unit_of = units if units is not None else [True] * len(reports)
        for (report, partition), state, unit in zip(reports, states, unit_of, strict=True):
            if state is None:
                continue  # stored at another partition: the first one wins
            days.add((report.occurred_at.date().isoformat(), partition))
            size = item_size(ReportRepository._item(report, partition, unit))
            if (partition, report.id) not in self.stored:
                self.meter.write("report", size)  # BatchWriteItem, or a conditional put
                self._keep(report, partition, size, unit)
            elif state:
                self.meter.write("report", size)  # a random id again: the same item rewritten
            else:
                self.meter.failed("report")  # a keyed id again: the put "if absent" fails
        for day, partition in sorted(days):
            self.meter.write("day", item_size({"pk": {"S": f"day#{day}"}, "sk": {"S": partition}}))
            self.days.add((day, partition))
        return [state is True for state in states]

    def _guard(self, report: Report, partition: str) -> bool | None:
        old = self.guards.get(report.id)
        if old is not None and old != partition:
            self.meter.failed("guard")
            return None
        item: Item = {
            "pk": {"S": f"id#{report.id}"},
            "sk": {"S": "id"},
            "partition": {"S": partition},
        }
        self.meter.write("guard", item_size(item))
        self.guards[report.id] = partition
        return old is None

    def _keep(self, report: Report, partition: str, size: int, unit: bool = True) -> None:
        self.stored.add((partition, report.id))
        self.bytes_[partition] += size
        self.partitions_.setdefault(partition, []).append(StoredPoint.of(report, unit))

    def points(self, partition: str) -> list[StoredPoint]:
        found = self.partitions_.get(partition, [])
        self.meter.target.reports_read += len(found)
        self.meter.read(rru(self.bytes_.get(partition, 0)))  # one Query, whole items
        return list(found)

    def points_many(self, partitions: list[str]) -> dict[str, list[StoredPoint]]:
        return {p: self.points(p) for p in partitions}

    def partitions_of_day(self, day: str) -> list[str]:
        return sorted(p for d, p in self.days if d == day)


class MemoryGrids(GridRepository):
    """The grids table: tiles, dirty and overview markers, flags and meta, as typed items."""

    def __init__(self, meter: Meter, clock: Callable[[], float]) -> None:
        self.meter = meter
        self.clock = clock
        self.tiles: dict[str, tuple[bytes, str]] = {}
        self.sizes: dict[tuple[str, str], int] = {}  # (pk, sk) -> item size, for every item
        self.marks: dict[str, frozenset[str]] = {}  # dirty mark sk -> layers
        self.mark_points: dict[str, tuple[StoredPoint, ...] | None] = {}  # sk -> carried
        self.overview: dict[str, BackgroundMarker] = {}
        self.flags: dict[str, tuple[str, float]] = {}  # name -> (owner, expires)
        self.meta: dict[str, str] = {}

    def _put(self, kind: str, item: Item, to: Cost | None = None) -> None:
        """PutItem or UpdateItem: the larger of the item before and after."""
        key = (item["pk"]["S"], item["sk"]["S"])
        size = item_size(item)
        self.meter.write(kind, max(size, self.sizes.get(key, 0)), to)
        self.sizes[key] = size

    def _delete(self, kind: str, pk: str, sk: str, to: Cost | None = None) -> None:
        self.meter.write(kind, self.sizes.pop((pk, sk), 0), to)

    def _query(self, pk: str, sks: list[str]) -> None:
        self.meter.read(rru(sum(self.sizes[(pk, sk)] for sk in sks)))

    # --- grids ---------------------------------------------------------------------------
    def get_many(
        self, keys: Iterable[str], *, consistent: bool = False
    ) -> dict[str, tuple[bytes, str]]:
        wanted = list(dict.fromkeys(keys))
        self.meter.target.tiles_read += len(wanted)
        factor = 2 if consistent else 1  # a strongly consistent read costs whole units
        for key in wanted:
            self.meter.read(factor * rru(self.sizes.get((key, GRID_SK), 0)))
        return {k: self.tiles[k] for k in wanted if k in self.tiles}

    def put_many(self, blobs: dict[str, bytes], computed_at: str) -> None:
        self.meter.target.tiles_written += len(blobs)
        for key, blob in blobs.items():
            item: Item = {
                "pk": {"S": key},
                "sk": {"S": GRID_SK},
                "g": {"B": blob},
                "computed_at": {"S": computed_at},
                "w": {"S": "0123abcd"},  # the write's id (shared/store/grids.py)
            }
            self._put("tiles", item)
            self.tiles[key] = (blob, computed_at)

    # --- dirty marks: one item per mark --------------------------------------------------
    def mark_dirty(self, partition: str, layers: Iterable[str]) -> None:
        self.mark_dirty_many({partition: set(layers)})

    def mark_dirty_many(
        self,
        marks: dict[str, set[str]],
        acked: dict[str, list[int]] | None = None,
        points: dict[str, list[StoredPoint]] | None = None,
    ) -> None:
        for partition, layers in sorted(marks.items()):
            if not layers:
                continue
            sk = f"{partition}#{uuid.uuid4().hex}"
            self.marks[sk] = frozenset(layers)
            item: Item = {
                "pk": {"S": "dirty"},
                "sk": {"S": sk},
                "layers": {"SS": sorted(layers)},
            }
            ticks = (acked or {}).get(partition)
            if ticks:  # the acknowledgement ticks the real mark carries (freshness)
                item["acked"] = {"L": [{"N": str(t)} for t in ticks]}
            carried = (points or {}).get(partition)
            self.mark_points[sk] = tuple(carried) if carried else None
            if carried:  # and the reports themselves
                item["pts"] = {"B": pack_points(carried)}
            self._put("dirty", item)  # BatchWriteItem

    def dirty_markers(self, limit: int = 500, after: str = "") -> list[Marker]:
        page = sorted(sk for sk in self.marks if not after or sk > f"{after}#~")[:MARK_PAGE]
        self._query("dirty", page)  # the whole page is read, however much of it is used
        grouped: dict[str, tuple[set[str], list[str]]] = {}
        carried: dict[str, tuple[StoredPoint, ...] | None] = {}
        for sk in page:
            partition = sk.split("#", 1)[0]
            if partition not in grouped and len(grouped) == limit:
                break
            layers, keys = grouped.setdefault(partition, (set(), []))
            layers.update(self.marks[sk])
            keys.append(sk)
            known, new = carried.setdefault(partition, ()), self.mark_points.get(sk)
            carried[partition] = None if known is None or new is None else known + new
        return [
            Marker(partition, frozenset(layers), keys=tuple(keys), points=carried[partition])
            for partition, (layers, keys) in grouped.items()
        ]

    def has_dirty(self) -> bool:
        self._query("dirty", sorted(self.marks)[:1])  # one key read
        return bool(self.marks)

    def dirty_keys(self, limit: int) -> list[str]:
        keys = sorted(self.marks)[:limit]
        self._query("dirty", keys)
        return keys

    def clear_markers(self, markers: Iterable[Marker]) -> None:
        for marker in markers:
            for sk in marker.keys:
                self.marks.pop(sk, None)
                self.mark_points.pop(sk, None)
                self._delete("clear", "dirty", sk)  # BatchWriteItem, unconditional

    # --- background markers ----------------------------------------------------------------
    def mark_background(self, by_layer: dict[str, set[str]], kind: str) -> None:
        for layer, partitions in sorted(by_layer.items()):
            sk = f"{kind}#{layer}#{uuid.uuid4().hex}"
            self.overview[sk] = BackgroundMarker(layer, frozenset(partitions), (sk,), kind)
            item: Item = {
                "pk": {"S": "background"},
                "sk": {"S": sk},
                "partitions": {"SS": sorted(partitions)},
            }
            self._put("bg-mark", item)  # BatchWriteItem, like the dirty marks

    def background_markers(self, limit: int = 100, page: int = MARK_PAGE) -> list[BackgroundMarker]:
        grouped: dict[tuple[str, str], list[BackgroundMarker]] = {}
        for sk in sorted(self.overview)[:page]:
            marker = self.overview[sk]
            if (marker.kind, marker.layer) not in grouped and len(grouped) == limit:
                break
            grouped.setdefault((marker.kind, marker.layer), []).append(marker)
        self._query("background", [k for ms in grouped.values() for m in ms for k in m.keys])
        return [
            BackgroundMarker(
                layer,
                frozenset().union(*(m.partitions for m in ms)),
                tuple(k for m in ms for k in m.keys),
                kind,
            )
            for (kind, layer), ms in grouped.items()
        ]

    def clear_background(self, marker: BackgroundMarker) -> None:
        for sk in marker.keys:
            self.overview.pop(sk, None)
            self._delete("bg-clear", "background", sk)  # BatchWriteItem, unconditional

    # --- coordination --------------------------------------------------------------------
    def acquire(self, name: str, ttl_s: float, owner: str, renew: bool = False) -> bool:
        now = self.clock()
        held = self.flags.get(name)
        if held is not None and held[1] >= now and not (renew and held[0] == owner):
            self.meter.failed(FLAG_KIND[name])
            return False
        self.flags[name] = (owner, now + ttl_s)
        item: Item = {
            "pk": {"S": "flag"},
            "sk": {"S": name},
            "owner": {"S": owner},
            "expires": {"N": f"{now + ttl_s:.3f}"},
        }
        self._put(FLAG_KIND[name], item)
        return True

    def release(self, name: str, owner: str | None = None) -> None:
        # The lease is released by every run: booked to the run, not to an overview pass.
        to = self.meter.base if name == recompute.LEASE else None
        held = self.flags.get(name)
        if owner is not None and (held is None or held[0] != owner):
            self.meter.write(FLAG_KIND[name], 0, to)  # a failed condition: 1 WRU
            return
        self.flags.pop(name, None)
        self._delete(FLAG_KIND[name], "flag", name, to)

    def get_meta(self, name: str) -> str | None:
        self.meter.read(rru(self.sizes.get(("meta", name), 0)))
        return self.meta.get(name)

    def put_meta(self, name: str, value: str) -> None:
        self.meta[name] = value
        self._put("meta", {"pk": {"S": "meta"}, "sk": {"S": name}, "value": {"S": value}})
