"""Per-report ingest cost against the number of reports already stored.

For N = 1k, 10k, 100k stored reports (spread over Great Britain, as a national deployment
would hold them), ingest single reports at random places and measure the whole worker path —
store the report, then recompute what it dirtied — with the tiles read and written per report.
The neighbourhood of each probe is built first, so the probe reads and rewrites real tiles.
Baseline in the same run: the same probes into an empty store (the ratio shows growth with N).

Storage is an in-memory stand-in with DynamoDB's semantics and cost shape (a Query reads one
partition, BatchGetItem reads the keys asked for): moto's Query scans the whole table, ~50 us per
stored item, which would measure moto rather than us. Encoding, decoding and every computation
are the real code.

    .venv/bin/python bench/ingest.py [--sizes 1000,10000,100000] [--probes 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import ingest
from shared.pyramid import Recomputer, layers_for
from shared.report import Report
from shared.settings import Settings
from shared.storage import GridRepository, Marker, ReportRepository, StoredPoint
from shared.tiles import Pyramid

GB = (-5.5, 50.3, 1.5, 55.8)  # west, south, east, north
CATEGORIES = ["harassment", "poor_lighting", "theft", "assault"]


class MemoryReports(ReportRepository):
    def __init__(self) -> None:
        self.partitions_: dict[str, list[StoredPoint]] = {}
        self.ids_: dict[str, str] = {}
        self.points_read = 0

    def store(self, report: Report, partition: str) -> bool:
        if report.id in self.ids_:
            return False
        self.ids_[report.id] = partition
        self.partitions_.setdefault(partition, []).append(
            StoredPoint(report.lon, report.lat, report.category, report.occurred_at)
        )
        return True

    def points(self, partition: str) -> list[StoredPoint]:
        found = self.partitions_.get(partition, [])
        self.points_read += len(found)
        return list(found)

    def points_many(self, partitions: list[str]) -> dict[str, list[StoredPoint]]:
        return {p: self.points(p) for p in partitions}


class MemoryGrids(GridRepository):
    def __init__(self) -> None:
        self.items: dict[str, tuple[bytes, str]] = {}
        self.dirty: dict[str, Marker] = {}
        self.read = 0
        self.written = 0

    def get_many(self, keys: Any) -> dict[str, tuple[bytes, str]]:
        keys = list(keys)
        self.read += len(keys)
        return {k: self.items[k] for k in keys if k in self.items}

    def put_many(self, blobs: dict[str, bytes], computed_at: str) -> None:
        self.written += len(blobs)
        self.items.update({k: (v, computed_at) for k, v in blobs.items()})

    def mark_dirty(self, partition: str, layers: Any) -> None:
        old = self.dirty.get(partition)
        merged = frozenset(layers) | (old.layers if old else frozenset())
        self.dirty[partition] = Marker(partition, merged, uuid.uuid4().hex)

    def dirty_markers(self, limit: int = 500) -> list[Marker]:
        return list(self.dirty.values())[:limit]

    def clear_marker(self, marker: Marker) -> None:
        if self.dirty.get(marker.partition) == marker:
            del self.dirty[marker.partition]

    def acquire(self, name: str, ttl_s: float, owner: str) -> bool:
        return True

    def release(self, name: str, owner: str | None = None) -> None:
        return None

    def put_meta(self, name: str, value: str) -> None:
        return None


def random_report(rng: random.Random, now: datetime) -> Report:
    lon = rng.uniform(GB[0], GB[2])
    lat = rng.uniform(GB[1], GB[3])
    when = now - timedelta(days=rng.uniform(0, 400))
    return Report(str(uuid.uuid4()), lat, lon, rng.choice(CATEGORIES), "", when, now)


def run(n: int, probes: int, seed: int) -> dict[str, float]:
    settings = Settings.from_env({})
    reports = MemoryReports()
    grids = MemoryGrids()
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    rec = Recomputer(reports, grids, pyramid, settings.privacy_min_reports)
    now = datetime.now(UTC)
    rng = random.Random(seed)
    for _ in range(n):
        r = random_report(rng, now)
        x, y = pyramid.partition_of(r.lon, r.lat)
        reports.store(r, f"{pyramid.partition_zoom}/{x}/{y}")
    probe_reports = [random_report(random.Random(seed * 1000 + i), now) for i in range(probes)]
    # Build the neighbourhood of every probe, as a live store would already have it.
    for p in probe_reports:
        x, y = pyramid.partition_of(p.lon, p.lat)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                grids.mark_dirty(
                    f"{pyramid.partition_zoom}/{x + dx}/{y + dy}",
                    layers_for(p.category, p.occurred_at, now),
                )
    ingest.recompute(grids, rec, "warm", 600, now, now.isoformat())
    times, written, read, points = [], [], [], []
    for p in probe_reports:
        grids.read = grids.written = reports.points_read = 0
        t = time.perf_counter()
        ingest.store(p, reports, grids, pyramid, now)
        ingest.recompute(grids, rec, "probe", 600, now, now.isoformat())
        times.append((time.perf_counter() - t) * 1000)
        written.append(grids.written)
        read.append(grids.read)
        points.append(reports.points_read)
    return {
        "ms": statistics.median(times),
        "p90": sorted(times)[int(0.9 * (len(times) - 1))],
        "written": statistics.median(written),
        "read": statistics.median(read),
        "points": statistics.median(points),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--probes", type=int, default=15)
    args = parser.parse_args()
    rows = [(0, run(0, args.probes, seed=1))]
    rows += [(int(n), run(int(n), args.probes, seed=1)) for n in args.sizes.split(",")]
    base = rows[0][1]["ms"]
    print(
        f"{'stored':>8} {'ms/report':>10} {'p90 ms':>8} {'tiles written':>14} "
        f"{'tiles read':>11} {'reports read':>13} {'ratio vs empty':>15}"
    )
    for n, r in rows:
        print(
            f"{n:>8} {r['ms']:>10.1f} {r['p90']:>8.1f} {r['written']:>14.0f} "
            f"{r['read']:>11.0f} {r['points']:>13.0f} {r['ms'] / base:>15.2f}"
        )


if __name__ == "__main__":
    main()
