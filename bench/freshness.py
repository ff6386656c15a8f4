"""Freshness under steady load: acknowledged-to-visible at RATE reports/s.

Starts the embedded stack with WORKERS Celery workers. wrk sends RATE - 3 reports/s (random
places in a London box, open loop) for DURATION seconds; meanwhile, once a second, a probe posts
3 reports close together in a fresh area (so the privacy threshold k = 3 is met) and polls
heatmap/get there (zoom 11) every 100 ms until the area shows density: its lag is from the
third 202 to the first answer that shows it, as a client sees it (including the web's grid
cache); after 2.5 s it polls every 500 ms (see POLL_FAST_S). Prints p50/p95/max of the
probes, the queue depth at the end (did the worker keep up?), and the worker-side figure of the
status endpoint (every report's lag, from its histogram), and how long after the load the
layers that trail under load (categories, overview zooms) took to catch up.

    .venv/bin/python bench/freshness.py [--rate 100] [--duration 60] [--workers 1]
        [--area south,west,height,width]   (where the background reports fall; default: a
                                             London box of ~11 x 10 km)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from benchlib import API, load, post_cluster, shows, start_stack, wrk

from shared.dev.devstack import Stack
from shared.store import aws
from shared.store.grids import GridRepository

POLL_FAST_S, FAST_FOR_S, POLL_SLOW_S = 0.1, 2.5, 0.5
"""A probe polls every 100 ms while its lag could still meet the 2 s target, then every 500
ms. Polling every 100 ms throughout made the benchmark feed on itself: once lags grew, 16
probes polled at once (160 requests/s), and the probe process and the web's answers to it
took a fifth of the two cores from the system under test, which grew the lags further."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def probe(url: str, j: int, timeout: float = 60.0) -> float | None:
    http = requests.Session()
    lat0, lon0 = -30 + (j // 40) * 0.5, -60 + (j % 40) * 0.5
    acked = post_cluster(http, url, lat0, lon0)
    # A small grid (zoom 11, ~30 x 30 cells) keeps the polling itself cheap for the web.
    while (elapsed := time.perf_counter() - acked) < timeout:
        if shows(http, url, lat0, lon0, zoom=11):
            return time.perf_counter() - acked
        time.sleep(POLL_FAST_S if elapsed < FAST_FOR_S else POLL_SLOW_S)
    return None


def catch_up(stack: Stack, load_end: float, timeout: float = 600.0) -> float | None:
    """Seconds from the end of the load until no dirty or background mark is left: when the
    categories and the overview zooms, which trail under load, have caught up."""
    settings = stack.settings()
    grids = GridRepository(aws.client(settings, "dynamodb"), settings.grids_table)
    while time.perf_counter() - load_end < timeout:
        if not grids.has_dirty() and not grids.background_markers(1, page=1):
            return time.perf_counter() - load_end
        time.sleep(0.5)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--area", default="51.45,-0.2,0.1,0.15")
    args = parser.parse_args()
    print(f"load average at start: {load()}", flush=True)
    env = {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}
    stack = start_stack(env, workers=args.workers, prefix="bench-fresh-")
    try:
        lags: list[float | None] = []
        background: dict[str, object] = {}

        def load_gen() -> None:
            background.update(
                wrk(
                    f"{stack.url}{API}/report/add",
                    duration=args.duration,
                    # Each connection sends at least every 0.5 s: an idle one outlives gunicorn's
                    # 5 s keep-alive, is closed, and wrk counts the next send as an error.
                    connections=max(2, min(50, args.rate // 2)),
                    rate=args.rate - 3,
                    method="POST",
                    body="report",
                    area=args.area,
                )
            )

        gen = threading.Thread(target=load_gen)
        gen.start()
        time.sleep(2)  # the schedule is running
        with ThreadPoolExecutor(16) as pool:
            futures = []
            for j in range(args.duration - 4):
                futures.append(pool.submit(probe, stack.url, j))
                time.sleep(1.0)
            gen.join()
            load_end = time.perf_counter()
            lags = [f.result() for f in futures]
        status = requests.get(f"{stack.url}{API}/status", timeout=10).json()
        caught_up = catch_up(stack, load_end)
    finally:
        stack.stop()
    seen = [lag for lag in lags if lag is not None]
    print(
        f"background: {background['ok_rate']:.1f} accepted/s, errors {background['errors']}, "
        f"p99 {background['p99_ms']:.1f} ms"
    )
    # A probe that never showed within its timeout counts as the timeout in the percentiles.
    lagged = [60.0 if lag is None else lag for lag in lags] or [float("nan")]
    print(
        f"probes: {len(seen)}/{len(lags)} visible; ack-to-visible p50 "
        f"{statistics.median(lagged):.2f} s, p95 {pct(lagged, 0.95):.2f} s, "
        f"max {max(lagged):.2f} s"
    )
    print("probe lags, sorted (s):", " ".join(f"{lag:.2f}" for lag in sorted(lagged)))
    # In the order the probes were posted (one a second from 2 s into the load): a tail that
    # comes in runs of neighbours is one slow stretch of the worker (a recompute run's start, a
    # background slice), scattered ones are the round the chunks go.
    print("probe lags, in order (s):", " ".join(f"{lag:.2f}" for lag in lagged))
    fresh = status["freshness"]

    def secs(ms: float | None) -> str:
        return "n/a" if ms is None else f"{ms / 1000:.2f} s"

    print(
        f"status endpoint (worker-side, {fresh['reports']} reports, last "
        f"{fresh['window_minutes']} min): p50 {secs(fresh['p50_ms'])}, "
        f"p95 {secs(fresh['p95_ms'])}; queue at the end: {status['queue']}"
    )
    print(
        "every layer and zoom caught up "
        + ("(not within 600 s)" if caught_up is None else f"{caught_up:.0f} s after the load ended")
    )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
