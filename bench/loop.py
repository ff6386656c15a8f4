"""The acknowledgement and freshness figures of the whole loop on the embedded default.

Starts its own stack (moto server, gunicorn, one Celery worker) on free ports, then measures:
- POST latency over N sequential posts (median, p99), against a baseline in the same run: GET
  /healthz on the same gunicorn (a request that does no work), so the ratio shows our cost;
- POST-to-visible: post one report (with two neighbours so the privacy threshold is met) in a
  fresh area and poll heatmap/get until the area shows density; median of M.

    .venv/bin/python bench/loop.py [--posts 500] [--visible 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import requests

from shared.dev.devstack import Stack
from shared.store import aws
from shared.store.grids import GridRepository


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def drain(stack: Stack, timeout: float) -> float:
    """Wait until the queue is empty and nothing is dirty: a warm, idle worker."""
    settings = stack.settings()
    sqs = aws.client(settings, "sqs")
    grids = GridRepository(aws.client(settings, "dynamodb"), settings.grids_table)
    url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if (
            attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
            and not grids.has_dirty()
        ):
            return time.perf_counter() - t
        time.sleep(0.2)
    raise SystemExit("the worker did not drain the queue in time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--visible", type=int, default=20)
    args = parser.parse_args()
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="bench-loop-")),
        extra_env={"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"},
    )
    stack.start(workers=1)
    http = requests.Session()
    add = f"{stack.url}/api/safetyheatmap/report/add"
    try:
        for _ in range(20):  # warm both paths
            http.get(f"{stack.url}/healthz", timeout=5)
        base = []
        for _ in range(args.posts):
            t = time.perf_counter()
            http.get(f"{stack.url}/healthz", timeout=5).raise_for_status()
            base.append((time.perf_counter() - t) * 1000)
        lat = []
        for i in range(args.posts):
            body = {
                "lat": -10 + (i % 50) * 0.01,
                "lon": 20 + (i // 50) * 0.01,
                "category": "poor_lighting",
            }
            t = time.perf_counter()
            r = http.post(
                add, data=json.dumps(body), timeout=10, headers={"Content-Type": "application/json"}
            )
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 202, r.text
        drained = drain(stack, timeout=300)
        visible = []
        for j in range(args.visible):
            lat0, lon0 = 30 + j * 0.2, 60.0
            bbox = f"{lon0 - 0.02},{lat0 - 0.02},{lon0 + 0.02},{lat0 + 0.02}"
            t = time.perf_counter()
            for k in range(3):
                http.post(
                    add,
                    data=json.dumps({"lat": lat0 + k * 0.0003, "lon": lon0, "category": "theft"}),
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
            while True:
                g = http.get(
                    f"{stack.url}/api/safetyheatmap/heatmap/get",
                    params={"bbox": bbox, "zoom": 13},
                    timeout=10,
                ).json()
                if g["max_value"] > 0:
                    break
                if time.perf_counter() - t > 30:
                    raise SystemExit("not visible within 30 s")
                time.sleep(0.02)
            visible.append(time.perf_counter() - t)
        print(
            f"POST /report/add, {args.posts} sequential: median {statistics.median(lat):.1f} ms, "
            f"p99 {pct(lat, 0.99):.1f} ms"
        )
        print(
            f"baseline GET /healthz, same gunicorn:     median {statistics.median(base):.1f} ms, "
            f"p99 {pct(base, 0.99):.1f} ms"
        )
        print(
            f"ratio POST/baseline (median): {statistics.median(lat) / statistics.median(base):.1f}x"
        )
        print(f"worker drained the {args.posts}-report burst {drained:.1f} s after the last POST")
        print(
            f"POST-to-visible, {args.visible} fresh areas: "
            f"median {statistics.median(visible):.2f} s, "
            f"p95 {pct(visible, 0.95):.2f} s, max {max(visible):.2f} s"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
