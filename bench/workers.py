"""Worker throughput: reports/s with 1 and 2 worker processes (each Celery's default pool).

For each worker count, a fresh stack starts with that many workers; then REPORTS reports are
put on the queue at once as the web would batch them (``store_reports`` messages of BATCH),
spread over two cities (demo-data hotspots), and the clock runs until every message is consumed
(reports stored: this part scales with workers) and until no partition is dirty (grids
recomputed: one recompute runs at a time, whatever the number of workers), at most WAIT s.
The emulator is one process on the same 2 cores, so these are emulator-bound figures; see
docs/BENCHMARKS.md for what they mean for AWS. Stored counts and times come from the workers'
"reports stored" log lines.

    .venv/bin/python bench/workers.py [--reports 1000] [--batch 20] [--counts 1,2] [--wait 300]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from benchlib import load, start_stack, tree_cpu

from shared.dev.devstack import Stack
from shared.model.report import parse_submission
from shared.model.taskmsg import celery_body
from shared.ops import seed
from shared.store import aws
from shared.store.grids import GridRepository
from workers.tasks import STORE_REPORTS


def run(count: int, reports: int, batch: int, wait: float) -> dict[str, float]:
    stack = start_stack(
        {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}, workers=count, prefix=f"bench-w{count}-"
    )
    try:
        s = stack.settings()
        sqs = aws.client(s, "sqs")
        grids = GridRepository(aws.client(s, "dynamodb"), s.grids_table)
        url = sqs.get_queue_url(QueueName=s.queue_name)["QueueUrl"]
        now = datetime.now(UTC)
        items = []
        for i, area in enumerate(("london", "paris")):
            for key, body in seed.plan(reports // 2, seed.AREAS[area], i, now):
                report = parse_submission(body, now=now, idempotency_key=f"{key}-{area}")
                items.append({"report": report.to_message(), "request_id": key})
        bodies = [
            celery_body(STORE_REPORTS, [items[i : i + batch]], s.queue_name)
            for i in range(0, len(items), batch)
        ]
        moto = next(p.popen.pid for p in stack.procs if p.name == "moto")
        workers = [p.popen.pid for p in stack.workers()]
        cpu0 = tree_cpu(moto), sum(tree_cpu(w) for w in workers)
        started = time.monotonic()
        for i in range(0, len(bodies), 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
                ],
            )
        wall = time.time()
        while True:
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            idle = all(v == "0" for v in attrs.values())
            if idle and not grids.has_dirty():
                done = time.monotonic()
                break
            if time.monotonic() - started > wait:
                done = float("nan")  # recomputes did not finish in time
                break
            time.sleep(0.25)
        stored, last = stored_by_logs(stack)
        taken = last - wall
        return {
            "reports": float(stored),
            "drained_s": done - started,
            "taken_s": taken,
            "rate": stored / taken,
            "moto_cpu": tree_cpu(moto) - cpu0[0],
            "worker_cpu": sum(tree_cpu(w) for w in workers) - cpu0[1],
        }
    finally:
        stack.stop()


def stored_by_logs(stack: Stack) -> tuple[int, float]:
    """(reports stored, epoch time of the last store) from the workers' task lines."""
    stored, last = 0, 0.0
    for log in stack.run_dir.glob("worker*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"reports stored"' not in line:
                continue
            entry = json.loads(line)
            stored += int(entry["stored"])
            stamp = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
            last = max(last, stamp)
    return stored, last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--counts", default="1,2")
    parser.add_argument("--wait", type=float, default=300)
    args = parser.parse_args()
    print(f"load average at start: {load()}", flush=True)
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        result = run(count, args.reports, args.batch, args.wait)
        rows.append((count, result))
        print(
            f"{count} worker(s): {result['reports']:.0f} reports stored in "
            f"{result['taken_s']:.1f} s "
            f"= {result['rate']:.0f} reports/s; grids settled after {result['drained_s']:.1f} s; "
            "CPU: workers "
            f"{result['worker_cpu']:.1f} s, emulator {result['moto_cpu']:.1f} s",
            flush=True,
        )
    print()
    print(
        "| worker processes | reports | all stored (s) | stored reports/s | grids settled (s) | "
        "worker CPU s | emulator CPU s |"
    )
    print("|---|---|---|---|---|---|---|")
    for count, r in rows:
        print(
            f"| {count} | {r['reports']:.0f} | {r['taken_s']:.1f} | {r['rate']:.0f} | "
            f"{r['drained_s']:.1f} | {r['worker_cpu']:.1f} | {r['moto_cpu']:.1f} |"
        )
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
