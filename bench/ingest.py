"""Per-report ingest cost, and its DynamoDB bill, against the number of reports already stored.

For N = 1k, 10k, 100k stored reports (spread over Great Britain, as a national deployment
would hold them), ingest single reports at random places and measure the whole worker path:
store the report (``ingest.store``) and schedule a run (``ingest.schedule_recompute``), then
recompute what it dirtied (``ingest.recompute``), with the tiles read and written and the
DynamoDB request units consumed per report. The neighbourhood of each probe is built first,
so the probe reads and rewrites real tiles. Baseline in the same run: the same probes into an
empty store (``vs empty``: the median time against the same mode's at N = 0).

Two modes per N, printed as separate rows:

- ``quiet``: every run refreshes every zoom (``recompute``'s default arguments), one report a
  run: what a system whose reports come minutes apart does.
- ``busy``: ``overview_zoom=8, background_every_s=60`` with a fake clock that advances ``--gap``
  seconds per report (default 8.64 s = 10,000 reports/day). A run recomputes zooms > 8 only;
  zooms <= 8 are refreshed by an overview pass at most every 60 s, so one pass covers ~7
  reports. What the worker does around that is replayed (``workers/tasks.py``): a run that
  finds the overview waiting takes the ``overview-scheduled`` flag and, if it got it, a delayed
  run fires ``background_in + 0.5`` s later on the fake clock (it may find the pass done already);
  a run cut by a budget is followed by another at once. Everything an overview pass costs
  (including delayed runs and the bookkeeping writes after the pass began) is amortised over
  the reports it covers. A busy row measures at least ``--probes`` reports, going on until the
  last of them is covered by a pass (so it may measure a few more).

Storage is an in-memory stand-in with DynamoDB's semantics and cost shape, mirroring
``shared/store/storage.py`` (a Query reads one partition, BatchGetItem reads the keys asked for; the
id guard only for ids from an Idempotency-Key, as the web's form sends: ``--keyed`` sets their
share; one dirty-mark item per mark, deleted in batches; overview markers, flags and meta as
there): moto's Query scans the whole table, ~50 us per stored item, which would measure moto
rather than us. Encoding, decoding and every computation are the real code. Keep the
stand-ins in step with ``storage.py`` when it changes: the counts are only as true as they.

Request units are counted as AWS bills an on-demand table (prices of us-east-1 on
2026-11-28: $0.625 per million write request units, $0.125 per million read request units),
on item shapes that mirror ``shared/store/storage.py``:

- a write (PutItem, UpdateItem, DeleteItem, or one item of a BatchWriteItem) costs
  ceil(size / 1 KB) WRU, the size being the larger of the item before and after (DeleteItem:
  the deleted item; at least 1 WRU, also for an item that does not exist); a conditional write
  whose condition fails costs 1 WRU (every such item here is < 1 KB);
- GetItem and each key of a BatchGetItem cost ceil(size / 4 KB) RRU, halved as they are
  eventually consistent by default, and half a unit for a key that does not exist; a Query
  costs the sum of the sizes of the items it reads (whole items: a projection does not reduce
  it) rounded up to 4 KB, halved (eventually consistent), and at least half a unit.

Item sizes are approximate: the sum of attribute-name lengths and value sizes, strings and
binaries by their byte length, numbers as (significant digits / 2) + 1 bytes, string sets as
the sum of their members. Reports carry no description here (a description adds up to 500
bytes to a report item, so to the Query of its partition, still < 1 KB a write). Not counted:
the worker's freshness bookkeeping (``shared/obs/status.py``: about three small writes a run) and
anything outside DynamoDB (SQS).

    .venv/bin/python bench/ingest.py [--sizes 1000,10000,100000] [--probes 15] [--gap 8.64]
        [--keyed 1.0]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.report import Report, report_id
from shared.store.storage import (
    GRID_SK,
    MARK_PAGE,
    BackgroundMarker,
    GridRepository,
    Marker,
    ReportRepository,
    StoredPoint,
    _keyed,  # the stand-in must guard exactly the ids the real store guards
    pack_points,
)
from workers import ingest
from workers.pyramid import Recomputer, StoredTiles, layers_for

Item = dict[str, dict[str, Any]]  # a DynamoDB item, typed attribute values

GB = (-5.5, 50.3, 1.5, 55.8)  # west, south, east, north
CATEGORIES = ["harassment", "poor_lighting", "theft", "assault"]

WRU_USD = 0.625 / 1e6  # on-demand, us-east-1, 2026-11-28
RRU_USD = 0.125 / 1e6
REPORTS_PER_DAY = 10_000
DAYS_PER_MONTH = 30
LEASE_S = 80.0  # the worker's task_time_limit + 5
TASK_TIME_LIMIT = 75.0

# Kinds of writes, in the order the breakdown prints them.
KINDS = [
    "guard",
    "claim",
    "report",
    "day",
    "dirty",
    "scheduled",
    "lease",
    "tiles",
    "clear",
    "bg-mark",
    "bg-clear",
    "bg-flag",
    "meta",
]
FLAG_KIND = {
    ingest.SCHEDULED: "scheduled",
    ingest.LEASE: "lease",
    ingest.BACKGROUND_SCHEDULED: "bg-flag",
    ingest.WAITING: "scheduled",
}


# --- request units -------------------------------------------------------------------------------
def value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "B":
        return len(v)
    if kind == "N":
        return number_size(v)
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "L":  # 3 bytes of overhead plus each element, as DynamoDB counts lists
        return 3 + sum(1 + value_size(e) for e in v)
    raise ValueError(f"no size for {kind}")


def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one (AWS's own approximation)."""
    mantissa = text.lower().lstrip("+-").split("e")[0].replace(".", "")
    digits = len(mantissa.strip("0")) or 1
    return math.ceil(digits / 2) + 1


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def rru(size: int) -> float:
    """Eventually consistent (the default of GetItem, BatchGetItem and Query): half units."""
    return max(1, math.ceil(size / 4096)) / 2


@dataclass
class Cost:
    """What one report (or one overview pass) cost; floats, as passes are shared out."""

    ms: float = 0.0
    tiles_written: float = 0.0
    tiles_read: float = 0.0
    reports_read: float = 0.0
    rru: float = 0.0
    wru: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def total_wru(self) -> float:
        return sum(self.wru.values())

    def add(self, other: Cost, share: float = 1.0) -> None:
        self.ms += other.ms * share
        self.tiles_written += other.tiles_written * share
        self.tiles_read += other.tiles_read * share
        self.reports_read += other.reports_read * share
        self.rru += other.rru * share
        for kind, units in other.wru.items():
            self.wru[kind] += units * share


class Meter:
    """Where request units go: `target`, which switches to the overview bucket once an overview
    pass begins inside a run; `base` is the run's own account (the lease it releases)."""

    def __init__(self) -> None:
        self.base = Cost()
        self.target = self.base
        self.bucket = Cost()  # the overview pass under way, with its delayed runs
        self._overview_t0: float | None = None

    def start(self, cost: Cost) -> None:
        self.base = self.target = cost

    def overview_begins(self) -> None:
        if self.target is not self.bucket:
            self.target = self.bucket
            self._overview_t0 = time.perf_counter()

    def take_overview_ms(self) -> float:
        """Milliseconds since the overview began, now booked to the bucket."""
        if self._overview_t0 is None:
            return 0.0
        ms = (time.perf_counter() - self._overview_t0) * 1000
        self._overview_t0 = None
        self.bucket.ms += ms
        return ms

    def write(self, kind: str, size: int, to: Cost | None = None) -> None:
        (self.target if to is None else to).wru[kind] += wru(size)

    def failed(self, kind: str) -> None:
        self.target.wru[kind] += 1

    def read(self, units: float) -> None:
        self.target.rru += units


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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
        to = self.meter.base if name == ingest.LEASE else None
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


class MeteredRecomputer(Recomputer):
    """Tells the meter when an overview pass begins: `run_layers` called other than by `run`."""

    def __init__(self, *args: Any, meter: Meter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meter = meter
        self._fine = False

    def run(
        self,
        markers: list[Marker],
        now: datetime,
        computed_at: str,
        zooms: range | None = None,
        seen: dict[str, list[StoredPoint]] | None = None,
        stored: StoredTiles | None = None,
    ) -> int:
        self._fine = True
        try:
            return super().run(markers, now, computed_at, zooms, seen, stored)
        finally:
            self._fine = False

    def run_layers(
        self,
        by_layer: dict[str, set[str]],
        now: datetime,
        computed_at: str,
        zooms: range | None = None,
        points_cache: dict[str, list[StoredPoint]] | None = None,
        stored: StoredTiles | None = None,
    ) -> int:
        if not self._fine:
            self._meter.overview_begins()
        return super().run_layers(by_layer, now, computed_at, zooms, points_cache, stored)


# --- the worker ----------------------------------------------------------------------------------
class Worker:
    """What workers/tasks.py does around the use cases, on a fake clock."""

    def __init__(
        self,
        reports: MemoryReports,
        grids: MemoryGrids,
        pyramid: Pyramid,
        rec: Recomputer,
        meter: Meter,
        clock: FakeClock,
        now: datetime,
    ) -> None:
        self.reports, self.grids, self.pyramid, self.rec = reports, grids, pyramid, rec
        self.meter, self.clock, self.now = meter, clock, now
        self.computed_at = now.isoformat(timespec="milliseconds")
        self.overview_zoom = -1
        self.every_s = 0.0
        self.delayed: list[float] = []  # fake-clock times of scheduled overview runs

    def store(self, report: Report) -> None:
        ingest.store(report, self.reports, self.grids, self.pyramid, self.now)
        ingest.schedule_recompute(self.grids, lambda: None, str(uuid.uuid4()), 60.0)

    def recompute(self, background: bool = False) -> None:
        owner = str(uuid.uuid4())
        if background:
            self.grids.release(ingest.BACKGROUND_SCHEDULED)
        while True:
            result = ingest.recompute(
                self.grids,
                self.rec,
                owner,
                LEASE_S,
                self.now,
                self.computed_at,
                overview_zoom=self.overview_zoom,
                background_every_s=self.every_s,
                clock=self.clock,
            )
            assert result.ran, "the lease is free between runs"
            if not (result.more or result.background_more):
                break
            if result.background_more:
                self.meter.base = self.meter.bucket  # the next run goes on with the pass
            owner = str(uuid.uuid4())
        if result.background_in is not None:
            ttl = result.background_in + TASK_TIME_LIMIT
            if self.grids.acquire(ingest.BACKGROUND_SCHEDULED, ttl, owner):
                self.delayed.append(self.clock() + result.background_in + 0.5)


# --- the benchmark -------------------------------------------------------------------------------
def random_report(rng: random.Random, now: datetime, keyed: float) -> Report:
    lon = rng.uniform(GB[0], GB[2])
    lat = rng.uniform(GB[1], GB[3])
    when = now - timedelta(days=rng.uniform(0, 400))
    category = rng.choice(CATEGORIES)
    # The web derives the id from the Idempotency-Key its own form sends; random without one.
    rid = report_id(uuid.uuid4().hex if rng.random() < keyed else None)
    # A pseudonym as the web sets it: every report here from another submitter (one claim).
    return Report(rid, lat, lon, category, "", when, now, submitter=f"{rng.getrandbits(128):032x}")


def run(n: int, probes: int, seed: int, gap: float, keyed: float) -> dict[str, Any]:
    """Both modes on one store: quiet probes first, then busy ones (other reports)."""
    settings = Settings.from_env({})
    per_pass = math.ceil(settings.background_refresh_s / gap)
    worker, probe_reports = build(n, seed, settings, 2 * probes + per_pass + 2, keyed)
    quiet = quiet_probes(worker, probe_reports[:probes])
    worker.overview_zoom = settings.overview_zoom
    worker.every_s = settings.background_refresh_s
    busy, passes = busy_probes(worker, probe_reports[probes:], probes, gap)
    return {"quiet": summarise(quiet), "busy": summarise(busy) | {"passes": passes}}


def build(
    n: int, seed: int, settings: Settings, count: int, keyed: float
) -> tuple[Worker, list[Report]]:
    """N reports stored, and `count` probe reports whose neighbourhoods are built."""
    meter = Meter()
    clock = FakeClock(1_800_000_000.0)
    reports = MemoryReports(meter)
    grids = MemoryGrids(meter, clock)
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    rec = MeteredRecomputer(reports, grids, pyramid, settings.privacy_rule, meter=meter)
    now = datetime.now(UTC)
    worker = Worker(reports, grids, pyramid, rec, meter, clock, now)
    rng = random.Random(seed)
    batch = []
    for _ in range(n):
        r = random_report(rng, now, keyed)
        x, y = pyramid.partition_of(r.lon, r.lat)
        batch.append((r, f"{pyramid.partition_zoom}/{x}/{y}"))
    reports.store_many(batch)
    probe_reports = [
        random_report(random.Random(seed * 1000 + i), now, keyed) for i in range(count)
    ]
    # Build the neighbourhood of every probe, as a live store would already have it.
    for p in probe_reports:
        x, y = pyramid.partition_of(p.lon, p.lat)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                grids.mark_dirty(
                    f"{pyramid.partition_zoom}/{x + dx}/{y + dy}",
                    layers_for(p.category, p.occurred_at, now),
                )
    worker.recompute()
    return worker, probe_reports


def quiet_probes(worker: Worker, probe_reports: list[Report]) -> list[Cost]:
    costs: list[Cost] = []
    for p in probe_reports:
        worker.clock.now += 300.0  # minutes apart
        cost = Cost()
        worker.meter.start(cost)
        t = time.perf_counter()
        worker.store(p)
        worker.recompute()
        cost.ms = (time.perf_counter() - t) * 1000
        costs.append(cost)
    return costs


class Ledger:
    """Shares out what each overview pass cost among the reports it covered."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.uncovered: list[Cost] = []
        self.passes: list[tuple[int, Cost]] = []  # (reports covered, what the pass cost)
        self.last = worker.grids.meta[ingest.BACKGROUND_AT]

    def settle(self) -> None:
        meter, at = self.worker.meter, self.worker.grids.meta[ingest.BACKGROUND_AT]
        if at == self.last:
            return  # no pass completed
        self.last = at
        for cost in self.uncovered:
            cost.add(meter.bucket, 1 / len(self.uncovered))
        self.passes.append((len(self.uncovered), meter.bucket))
        self.uncovered.clear()
        meter.bucket = Cost()

    def fire_delayed(self) -> None:
        """The delayed overview runs due by now, each at its own time, booked to the pass."""
        worker, meter, clock = self.worker, self.worker.meter, self.worker.clock
        step = clock.now
        due, worker.delayed = sorted(worker.delayed), []
        for at in due:
            if at > step:
                worker.delayed.append(at)
                continue
            clock.now = at
            meter.start(meter.bucket)
            t = time.perf_counter()
            worker.recompute(background=True)
            meter.take_overview_ms()
            meter.bucket.ms += (time.perf_counter() - t) * 1000
            self.settle()
        clock.now = step


def busy_probes(
    worker: Worker, probe_reports: list[Report], wanted: int, gap: float
) -> tuple[list[Cost], list[tuple[int, Cost]]]:
    """At least `wanted` reports, `gap` seconds apart, until a pass has covered them all."""
    meter = worker.meter
    # A pass has just finished, as in the middle of a steady stream of reports.
    meter.start(Cost())
    worker.grids.put_meta(ingest.BACKGROUND_AT, f"{worker.clock():.3f}")
    meter.bucket = Cost()
    ledger = Ledger(worker)
    costs: list[Cost] = []
    for p in probe_reports:
        worker.clock.now += gap
        ledger.fire_delayed()
        if len(costs) >= wanted and not ledger.uncovered:
            return costs, ledger.passes
        cost = Cost()
        meter.start(cost)
        costs.append(cost)
        ledger.uncovered.append(cost)
        t = time.perf_counter()
        worker.store(p)
        worker.recompute()
        cost.ms += (time.perf_counter() - t) * 1000 - meter.take_overview_ms()
        ledger.settle()
    raise RuntimeError("ran out of probe reports before a pass covered the last ones")


def summarise(costs: list[Cost]) -> dict[str, Any]:
    ms = [c.ms for c in costs]
    total = Cost()
    for c in costs:
        total.add(c, 1 / len(costs))
    return {
        "n": len(costs),
        "ms": statistics.median(ms),
        "p90": sorted(ms)[int(0.9 * (len(ms) - 1))],
        "written": statistics.median(c.tiles_written for c in costs),
        "read": statistics.median(c.tiles_read for c in costs),
        "points": statistics.median(c.reports_read for c in costs),
        "wru_median": statistics.median(c.total_wru for c in costs),
        "wru_mean": total.total_wru,
        "rru_mean": total.rru,
        "kinds": dict(total.wru),
        "tile_kb": total.wru["tiles"] / total.tiles_written if total.tiles_written else 0.0,
    }


def monthly_usd(r: dict[str, Any]) -> float:
    per_report = r["wru_mean"] * WRU_USD + r["rru_mean"] * RRU_USD
    return per_report * REPORTS_PER_DAY * DAYS_PER_MONTH


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--probes", type=int, default=15)
    parser.add_argument(
        "--gap", type=float, default=8.64, help="busy mode: seconds between reports"
    )
    parser.add_argument(
        "--keyed",
        type=float,
        default=1.0,
        help="share of reports with an Idempotency-Key (guarded); the web's form sends one",
    )
    args = parser.parse_args()
    sizes = [0] + [int(n) for n in args.sizes.split(",")]
    results = {n: run(n, args.probes, seed=1, gap=args.gap, keyed=args.keyed) for n in sizes}
    modes = ["quiet", "busy"]
    print(
        f"{'stored':>7} {'mode':>5} {'ms/report':>9} {'p90 ms':>7} {'vs empty':>8} "
        f"{'tiles wr':>8} {'tiles rd':>8} {'rep rd':>6} {'WRU med':>7} {'WRU mean':>8} "
        f"{'RRU mean':>8} {'$/month':>7}"
    )
    for n in sizes:
        for mode in modes:
            r = results[n][mode]
            base = results[0][mode]["ms"]
            print(
                f"{n:>7} {mode:>5} {r['ms']:>9.1f} {r['p90']:>7.1f} {r['ms'] / base:>8.2f} "
                f"{r['written']:>8.1f} {r['read']:>8.1f} {r['points']:>6.1f} "
                f"{r['wru_median']:>7.1f} {r['wru_mean']:>8.1f} {r['rru_mean']:>8.1f} "
                f"{monthly_usd(r):>7.2f}"
            )
    print(
        f"\nWRU per report by kind (mean; $/month at {REPORTS_PER_DAY:,} reports/day x "
        f"{DAYS_PER_MONTH} days, ${WRU_USD * 1e6:.3f}/M WRU, ${RRU_USD * 1e6:.3f}/M RRU; "
        "tile = mean WRU per tile written)"
    )
    print(f"{'stored':>7} {'mode':>5} " + " ".join(f"{k:>9}" for k in KINDS) + f" {'tile':>5}")
    for n in sizes:
        for mode in modes:
            r = results[n][mode]
            cells = " ".join(f"{r['kinds'].get(k, 0.0):>9.2f}" for k in KINDS)
            print(f"{n:>7} {mode:>5} {cells} {r['tile_kb']:>5.2f}")
    print(
        "\nbusy: reports measured; reports covered by each overview pass; mean of one pass "
        "(with its delayed runs)"
    )
    for n in sizes:
        r = results[n]["busy"]
        passes = r["passes"]
        covered = [k for k, _ in passes]
        mean = Cost()
        for _, cost in passes:
            mean.add(cost, 1 / len(passes))
        print(
            f"{n:>7} {r['n']:>3} reports, passes {covered}: {mean.ms:.0f} ms, "
            f"{mean.tiles_written:.0f} tiles written, {mean.tiles_read:.0f} read, "
            f"{mean.total_wru:.0f} WRU, {mean.rru:.0f} RRU"
        )


if __name__ == "__main__":
    main()
