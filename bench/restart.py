"""Restart of a stack that keeps its data: start time with 10,000 stored reports against an
empty start in the same run (the baseline), and the emulator's save of that state.

Seeds the reports through the worker's own store path (workers/ingest.py: report items, their
day entries and dirty marks; no task is sent, so no grid is computed), stops the stack warmly,
starts it again on the same data folder and times ``Stack.start``.

    .venv/bin/python bench/restart.py [--reports 10000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# The checkout before bench/ (the script's folder, first on the path): bench/workers.py, the
# workers benchmark, would shadow the workers package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.dev.devstack import Stack
from shared.dev.persist import FILE
from shared.geo.tiles import Pyramid
from shared.model.report import parse_submission
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.reports import ReportRepository
from workers import ingest

ENV = {"SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2", "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}


def timed_start(stack: Stack) -> float:
    started = time.perf_counter()
    stack.start(workers=1)
    return time.perf_counter() - started


def seed(stack: Stack, n: int) -> None:
    settings = stack.settings()
    ddb = aws.client(settings, "dynamodb")
    reports = ReportRepository(ddb, settings.reports_table)
    grids = GridRepository(ddb, settings.grids_table)
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    rng = random.Random(11)
    now = datetime.now(UTC)
    batch = []
    for _ in range(n):
        body = {"lat": 51.5 + rng.gauss(0, 0.05), "lon": -0.12 + rng.gauss(0, 0.08)}
        batch.append(parse_submission({**body, "category": "theft"}, now=now))
        if len(batch) == 100:
            ingest.store_many(batch, reports, grids, pyramid, now, distinct=False)
            batch = []
    if batch:
        ingest.store_many(batch, reports, grids, pyramid, now, distinct=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="restart-"))
    data = root / "data"
    stack = Stack(root / "run", extra_env=ENV, data_dir=data)
    try:
        empty_s = timed_start(stack)
        seeded = time.perf_counter()
        seed(stack, args.reports)
        print(f"seeded {args.reports} reports in {time.perf_counter() - seeded:.1f}s")
        stopping = time.perf_counter()
        stack.stop()
        stop_s = time.perf_counter() - stopping
        size = (data / FILE).stat().st_size
        stack = Stack(root / "run", extra_env=ENV, data_dir=data)
        full_s = timed_start(stack)
        count = len(
            ReportRepository(
                aws.client(stack.settings(), "dynamodb"), stack.settings().reports_table
            ).ids()
        )
    finally:
        stack.stop()
    print(f"snapshot {size / 1e6:.1f} MB; warm stop {stop_s:.2f}s")
    print(f"start, empty (baseline):          {empty_s:.2f}s")
    print(f"start, {count} reports stored: {full_s:.2f}s  (x{full_s / empty_s:.2f})")
    loaded = [
        line for line in (root / "run" / "moto.log").read_text().splitlines() if "loaded" in line
    ]
    print(loaded[-1] if loaded else "no load line in moto.log")


if __name__ == "__main__":
    main()
