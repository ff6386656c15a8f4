"""First reports on a cold worker: acknowledged-to-visible on a stack that has just started.

For each of RUNS fresh embedded stacks (moto server, gunicorn, one Celery worker): as soon as
it is up, post 3 reports close together (the privacy threshold) and poll heatmap/get every
50 ms until they show; then, in the same stack, the same in a second fresh area once the
worker is warm (the baseline of the same run). Prints both and their ratio. What it shows is
what each pool process does before its first task can run (its clients, its imports).

    .venv/bin/python bench/cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests
from benchlib import post_cluster, shows

from shared.dev.devstack import Stack


def visible_after(http: requests.Session, url: str, lat: float, lon: float) -> float:
    acked = post_cluster(http, url, lat, lon)
    while time.perf_counter() - acked < 60:
        if shows(http, url, lat, lon, zoom=13):
            return time.perf_counter() - acked
        time.sleep(0.05)
    raise SystemExit("the reports did not show within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.runs):
        stack = Stack(
            Path(tempfile.mkdtemp(prefix="bench-cold-")),
            extra_env={"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"},
        )
        stack.start(workers=1)
        try:
            http = requests.Session()
            cold.append(visible_after(http, stack.url, 51.5, -0.12))
            time.sleep(3)  # every pool process has started and is idle
            warm.append(visible_after(http, stack.url, 48.85, 2.35))
        finally:
            stack.stop()
    print(f"cold worker, first reports visible after (s): {[round(v, 2) for v in cold]}")
    print(f"warm worker, same stack (baseline) (s):       {[round(v, 2) for v in warm]}")
    print(f"ratio cold/warm (medians): {statistics.median(cold) / statistics.median(warm):.2f}x")


if __name__ == "__main__":
    main()
