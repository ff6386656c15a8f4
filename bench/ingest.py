"""Per-report ingest cost, and its DynamoDB bill, against the number of reports already stored.

For N = 1k, 10k, 100k stored reports (spread over Great Britain, as a national deployment
would hold them), ingest single reports at random places and measure the whole worker path:
store the report (``ingest.store``) and schedule a run (``ingest.schedule_recompute``), then
recompute what it dirtied (``recompute.recompute``), with the tiles read and written and the
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
``shared/store/`` (a Query reads one partition, BatchGetItem reads the keys asked for; the
id guard only for ids from an Idempotency-Key, as the web's form sends: ``--keyed`` sets their
share; one dirty-mark item per mark, deleted in batches; overview markers, flags and meta as
there): moto's Query scans the whole table, ~50 us per stored item, which would measure moto
rather than us. Encoding, decoding and every computation are the real code. Keep the
stand-ins in step with those when they change: the counts are only as true as they.

Request units are counted as AWS bills an on-demand table (prices of us-east-1 on
2026-11-28: $0.625 per million write request units, $0.125 per million read request units),
on item shapes that mirror ``shared/store/reports.py`` and ``grids.py``:

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
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The checkout before bench/ (the script's folder, first on the path): bench/workers.py, the
# workers benchmark, would shadow the workers package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest_store import MemoryGrids, MemoryReports
from ingest_units import Cost, FakeClock, Meter
from ingest_worker import MeteredRecomputer, Worker

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.report import Report, report_id
from workers.background import BACKGROUND_AT
from workers.layers import layers_for

GB = (-5.5, 50.3, 1.5, 55.8)  # west, south, east, north
CATEGORIES = ["harassment", "poor_lighting", "theft", "assault"]

WRU_USD = 0.625 / 1e6  # on-demand, us-east-1, 2026-11-28
RRU_USD = 0.125 / 1e6
REPORTS_PER_DAY = 10_000
DAYS_PER_MONTH = 30

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
        self.last = worker.grids.meta[BACKGROUND_AT]

    def settle(self) -> None:
        meter, at = self.worker.meter, self.worker.grids.meta[BACKGROUND_AT]
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
    worker.grids.put_meta(BACKGROUND_AT, f"{worker.clock():.3f}")
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
