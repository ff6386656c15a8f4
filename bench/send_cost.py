"""CPU of the web's two calls made without boto3 (web/awsjson.py), against boto3 (the baseline).

    .venv/bin/python bench/send_cost.py [--calls 300] [--reports 25] [--rounds 3]

Starts the embedded emulator (nothing else), then makes each call CALLS times with each client
in turn, ROUNDS times alternating: SendMessage of the same message (a store_reports batch of
REPORTS reports as the web builds it; web/sqs_send.py), and GetItem of the `tiles-written`
item (the tile cache's beacon; web/beacon.py). CPU is this process's (time.process_time), so
the emulator's work and the wait for it stay out; wall time per call is printed beside it. The
queue is drained between rounds so moto's depth-dependent costs do not grow.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/send_cost.py` from a checkout
    sys.path.insert(0, str(ROOT))

from shared.dev.devstack import Stack  # noqa: E402
from shared.model.report import parse_submission  # noqa: E402
from shared.model.taskmsg import STORE_REPORTS, celery_body  # noqa: E402
from shared.store import aws  # noqa: E402
from shared.store.storage import TILES_WRITTEN, GridRepository  # noqa: E402
from web import beacon  # noqa: E402
from web.sqs_send import SendMessage  # noqa: E402


def per_call(send: Callable[[], object], calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        send()
    return (
        (time.process_time() - cpu) / calls * 1000,
        (time.perf_counter() - wall) / calls * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reports", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-send-")))
    try:
        stack.start_emulator()
        stack.provision()
        settings = stack.settings()
        sqs = aws.client(settings, "sqs", timeout=settings.enqueue_timeout, attempts=2)
        url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        lean = SendMessage(
            sqs.meta.endpoint_url,
            sqs.meta.region_name,
            aws.credentials(settings),
            settings.enqueue_timeout,
        )
        now = datetime.now(UTC)
        body = {"lat": 51.5, "lon": -0.12, "category": "harassment", "description": "dark alley"}
        items = [
            {"report": parse_submission(body, now=now).to_message(), "request_id": f"r{i:015x}"}
            for i in range(args.reports)
        ]
        message = celery_body(STORE_REPORTS, [items], settings.queue_name)
        ddb = aws.client(settings, "dynamodb", timeout=3.0, attempts=3)
        grids = GridRepository(ddb, settings.grids_table)
        grids.put_meta(TILES_WRITTEN, "run-1")
        creds = aws.credentials(settings)
        lean_get = beacon.for_client(ddb, creds, settings.grids_table, TILES_WRITTEN)
        calls: dict[str, dict[str, Callable[[], object]]] = {
            f"SendMessage of {args.reports} reports ({len(message):,} bytes)": {
                "boto3": lambda: sqs.send_message(QueueUrl=url, MessageBody=message),
                "web/sqs_send.py": lambda: lean(url, message),
            },
            "GetItem of tiles-written": {
                "boto3": lambda: grids.get_meta(TILES_WRITTEN),  # what the web called before
                "web/beacon.py": lean_get,
            },
        }
        for what, clients in calls.items():
            for call in clients.values():  # warm: connections, botocore's lazy models
                call()
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
            for _ in range(args.rounds):
                for name, call in clients.items():
                    results[name].append(per_call(call, args.calls))
                    _drain(sqs, url)
            print(f"\n{what}, {args.calls} calls a round")
            print("| client | CPU ms per call (rounds) | median | wall ms per call (median) |")
            print("|---|---|---|---|")
            medians = {}
            for name, runs in results.items():
                medians[name] = statistics.median(c for c, _ in runs)
                cpus = ", ".join(f"{c:.2f}" for c, _ in runs)
                wall = statistics.median(w for _, w in runs)
                print(f"| {name} | {cpus} | {medians[name]:.2f} | {wall:.2f} |")
            ours, base = list(medians.values())[1], medians["boto3"]
            print(f"ours / boto3 CPU: {ours / base:.2f}")
    finally:
        stack.stop()


def _drain(sqs: Any, url: str) -> None:
    """Delete what was sent (PurgeQueue is allowed once a minute): keeps moto's queue shallow."""
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


if __name__ == "__main__":
    main()
