"""How long the services take to start: their imports, and the embedded stack up and down.

A worker woken from zero (Fargate Spot), a web task replaced in a deploy, every test stack and
`make run` pay a service's imports before it answers. Each service's entry module is imported
in a fresh interpreter, best of RUNS; the baseline of the same run is a fresh interpreter
importing only the libraries the service is built on (falcon and boto3; celery, boto3 and
numpy). Then the whole embedded stack (emulator, tables and queues, web, one worker) is started
until every part answers and stopped again, RUNS times.

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, load

from shared.dev.devstack import Stack

PROBE = "import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
SERVICES = {
    "web (web.wsgi)": ("web.wsgi", "falcon, boto3"),
    "worker (workers.celery_app)": ("workers.celery_app", "celery, boto3, numpy"),
}


def import_s(modules: str, runs: int) -> float:
    """Best of `runs` fresh interpreters: other jobs on the box only ever add time."""
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(modules=modules)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(out))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {load()}\n")
    print("| service | import, best of runs | its libraries alone (baseline) | ratio |")
    print("|---|---|---|---|")
    for name, (module, libraries) in SERVICES.items():
        ours, base = import_s(module, args.runs), import_s(libraries, args.runs)
        print(f"| {name} | {ours:.2f} s | {base:.2f} s ({libraries}) | {ours / base:.2f}x |")
    starts, stops = [], []
    for _ in range(args.runs):
        stack = Stack(Path(tempfile.mkdtemp(prefix="bench-startup-")))
        began = time.perf_counter()
        try:
            stack.start(workers=1)
            starts.append(time.perf_counter() - began)
        finally:
            began = time.perf_counter()
            stack.stop()
            stops.append(time.perf_counter() - began)
    print(
        f"\nembedded stack, {args.runs} runs: up (every part answering) in "
        f"{', '.join(f'{s:.1f}' for s in starts)} s (median {statistics.median(starts):.1f} s); "
        f"stopped in {', '.join(f'{s:.1f}' for s in stops)} s "
        f"(median {statistics.median(stops):.1f} s)"
    )
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
