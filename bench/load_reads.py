"""Cached reads: warm PNG tiles and heatmap/get against static bytes on the same configuration.

Seeds demo reports through the API (one worker), waits until the grids are computed, stops the
worker, then saturates each endpoint with wrk (closed loop, CONNECTIONS connections) for
DURATION seconds: the baseline serves the very same bytes (the tile's PNG, the heatmap's JSON)
from memory with an ETag, in a bare Falcon app under the same gunicorn configuration. Prints
requests/s, p50/p99 and the ratio to the baseline, for 200 answers and for the 304 path
(If-None-Match with the current ETag).

    .venv/bin/python bench/load_reads.py [--duration 10] [--connections 16] [--reports 400]
        [--rounds 3]   (alternating baseline/ours rounds; the median of each is reported)
        [--rate R]     (open loop at R requests/s instead: compare the latencies, not the rates)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from benchlib import Baseline, describe_web, load, start_stack, wrk

from shared.geo.tiles import lonlat_to_world
from shared.ops import seed
from shared.store import aws
from shared.store.grids import GridRepository

API = "/api/safetyheatmap"
BBOX = "-0.16,51.49,-0.06,51.53"


def settled(stack: Any) -> bool:
    s = stack.settings()
    sqs = aws.client(s, "sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=s.queue_name)["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    grids = GridRepository(aws.client(s, "dynamodb"), s.grids_table)
    return (
        attrs["ApproximateNumberOfMessages"] == "0"
        and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        and not grids.has_dirty()
    )


def rounds(
    base_url: str,
    theirs: dict[str, str],
    our_url: str,
    ours: dict[str, str],
    args: argparse.Namespace,
    common: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alternating rounds, the median of each side: the shared box's noise hits both."""
    bs, as_ = [], []
    for _ in range(args.rounds):
        bs.append(wrk(base_url, headers=theirs, **common))
        as_.append(wrk(our_url, headers=ours, **common))
    b = sorted(bs, key=lambda r: r["ok_rate"])[len(bs) // 2]
    a = sorted(as_, key=lambda r: r["ok_rate"])[len(as_) // 2]
    return b, a


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--rate", type=float, default=0, help="open loop at this rate (0: closed)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(f"load average at start: {load()}", flush=True)
    env = {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}
    stack = start_stack(env, workers=1, prefix="bench-reads-")
    baseline = None
    rows = []
    try:
        statuses = seed.post_all(
            stack.url, seed.plan(args.reports, seed.AREAS["london"], 3, seed.now_utc())
        )
        assert set(statuses) == {202}, statuses
        deadline = time.monotonic() + 300
        while not settled(stack):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not settle")
            time.sleep(0.5)
        stack.scale_workers(0)  # reads only from here on
        x, y = lonlat_to_world(-0.1278, 51.5074)
        tile = f"{API}/heatmap/tiles/13/{int(x * 2**13)}/{int(y * 2**13)}.png"
        heatmap = f"{API}/heatmap/get?bbox={BBOX}&zoom=13"
        static = Path(tempfile.mkdtemp(prefix="bench-static-"))
        etags = {}
        for name, path in (("tile", tile), ("heatmap", heatmap)):
            resp = requests.get(stack.url + path, timeout=10)
            resp.raise_for_status()
            (static / name).write_bytes(resp.content)
            etags[name] = resp.headers["ETag"]
            print(f"{name}: {len(resp.content)} bytes, {resp.headers['Content-Type']}")
        baseline = Baseline(stack, static)
        for name, path in (("tile", tile), ("heatmap", heatmap)):
            base_etag = requests.get(f"{baseline.url}/static/{name}", timeout=5).headers["ETag"]
            for label, ours, theirs in (
                ("200", {}, {}),
                ("304", {"If-None-Match": etags[name]}, {"If-None-Match": base_etag}),
            ):
                common = {
                    "duration": args.duration,
                    "connections": args.connections,
                    "rate": args.rate,
                }
                wrk(stack.url + path, duration=2, connections=4, headers=ours)  # warm
                b, a = rounds(
                    f"{baseline.url}/static/{name}", theirs, stack.url + path, ours, args, common
                )
                rows.append((name, label, b, a))
                print(
                    f"{name} {label}: ours {a['ok_rate']:.0f}/s p99 {a['p99_ms']:.2f} ms, "
                    f"baseline {b['ok_rate']:.0f}/s p99 {b['p99_ms']:.2f} ms, "
                    f"ratio {a['ok_rate'] / b['ok_rate']:.0%}, errors {a['errors']}",
                    flush=True,
                )
    finally:
        if baseline is not None:
            baseline.stop()
        stack.stop()
    loop = f"open loop at {args.rate:.0f}/s" if args.rate else "closed loop"
    print()
    print(
        f"gunicorn: {describe_web(stack.settings())}, the same configuration for both; wrk -t1 "
        f"-c{args.connections}, {loop}, "
        f"{args.duration} s each, median of {args.rounds} "
        "alternating rounds"
    )
    print()
    print(
        "| request | answer | ours req/s | baseline req/s | ratio | ours p50 / p99 ms | "
        "baseline p50 / p99 ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, label, b, a in rows:
        what = "tiles/13/x/y.png" if name == "tile" else "heatmap/get (zoom 13)"
        print(
            f"| {what} | {label} | {a['ok_rate']:.0f} | {b['ok_rate']:.0f} | "
            f"{a['ok_rate'] / b['ok_rate']:.0%} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {a['errors']} |"
        )
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
