"""The acknowledgement path under open-loop load, against a no-op baseline in the same run.

Starts the embedded stack with no worker (the ack path alone; reports wait in the queue, which
is emptied between steps so the emulator stays shallow) and the baseline server (a bare Falcon
POST) under the same gunicorn configuration. At each rate, wrk (bench/wrk.lua) sends POSTs on
a fixed schedule for DURATION seconds, first to the baseline, then to report/add (a random place
per report); prints p50/p99 latency, errors, accepted reports/s, reports per SQS message, and the
ratio to the baseline.

    .venv/bin/python bench/load_ack.py [--rates 250,500,1000,1500] [--duration 10]
        [--connections 200] [--web-class gevent|gthread] [--web-threads 64] [--web-workers 1]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from benchlib import Baseline, describe_web, load, start_stack, tree_cpu, wrk

from shared.ops.dlq import decode
from shared.store import aws
from shared.store.provision import provision

DRAIN_PAUSE_S = 0.2


class Drainer:
    """Deletes what the web enqueues, as workers would, so the emulator's queue stays shallow
    (moto's SendMessage slows with depth; real SQS does not). Counts messages and reports."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.messages = self.reports = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if len(batch) < 10:
                # Let messages gather (a few dozen at most: the queue stays shallow). A long
                # poll returns with the first message that comes, so taking each at once cost
                # a receive and a delete per message: the emulator's CPU, on the cores the web
                # under test shares.
                self.stop.wait(DRAIN_PAUSE_S)
            if not batch:
                continue
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
            for message in batch:
                decoded = decode(message["Body"])
                self.messages += 1
                self.reports += len(decoded[1][0]) if decoded else 0

    def close(self) -> tuple[int, int]:
        self.stop.set()
        self.thread.join(10)
        return self.messages, self.reports


def report(args: argparse.Namespace, rows: list[Any], web: str) -> None:
    print()
    print(
        f"gunicorn: {web}, same config file for both; wrk -t1 -c{args.connections}, "
        f"{args.duration:.0f} s per step, open loop"
    )
    print()
    print(
        "| offered/s | baseline p50 / p99 ms | report/add p50 / p99 ms | ratio p50 / p99 | "
        "accepted/s | errors | late sends | reports per message |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate, base, app, messages in rows:
        print(
            f"| {rate} | {base['p50_ms']:.2f} / {base['p99_ms']:.2f} | "
            f"{app['p50_ms']:.2f} / {app['p99_ms']:.2f} | "
            f"{app['p50_ms'] / base['p50_ms']:.1f}x / {app['p99_ms'] / base['p99_ms']:.1f}x | "
            f"{app['ok_rate']:.0f} | {app['errors']} | {app['late']} | "
            f"{app['ok'] / max(messages, 1):.1f} |"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="250,500,1000,1500")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--web-class", help="SAFETYHEATMAP_WEB_WORKER_CLASS (default: setting)")
    parser.add_argument("--web-threads", type=int, default=64, help="gthread only")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--no-drain", action="store_true", help="let the queue grow")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    env = {
        "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
        "SAFETYHEATMAP_WEB_THREADS": str(args.web_threads),
        "SAFETYHEATMAP_WEB_WORKERS": str(args.web_workers),
    }
    if args.web_class is not None:
        env["SAFETYHEATMAP_WEB_WORKER_CLASS"] = args.web_class
    print(f"load average at start: {load()}", flush=True)
    stack = start_stack(env, workers=0, prefix="bench-ack-")
    baseline = Baseline(stack)
    settings = stack.settings()
    sqs = aws.client(settings, "sqs")
    add = f"{stack.url}/api/safetyheatmap/report/add"
    common = {"connections": args.connections, "method": "POST", "body": "report"}
    rows = []
    try:

        def fresh_queue() -> str:
            url: str = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
            sqs.delete_queue(QueueUrl=url)
            provision(settings)
            return url

        for target in (f"{baseline.url}/noop", add):  # warm both (imports, connections, caches)
            wrk(target, duration=3, rate=200, **common)  # type: ignore[arg-type]
        for rate in rates:
            cpu = tree_cpu(baseline.proc.pid)
            base = wrk(f"{baseline.url}/noop", duration=args.duration, rate=rate, **common)  # type: ignore[arg-type]
            base["web_cpu_ms"] = (
                (tree_cpu(baseline.proc.pid) - cpu) * 1000 / max(base["requests"], 1)
            )
            url = fresh_queue()
            time.sleep(1)
            drainer = None if args.no_drain else Drainer(sqs, url)
            web, moto = (p.popen.pid for p in sorted(stack.procs, key=lambda p: p.name != "web"))
            cpu0 = tree_cpu(web), tree_cpu(moto)
            app = wrk(add, duration=args.duration, rate=rate, **common)  # type: ignore[arg-type]
            app["web_cpu_ms"] = (tree_cpu(web) - cpu0[0]) * 1000 / max(app["requests"], 1)
            app["moto_cpu_ms"] = (tree_cpu(moto) - cpu0[1]) * 1000 / max(app["requests"], 1)
            if drainer is not None:
                time.sleep(2)
                messages, _ = drainer.close()
            else:
                messages = int(
                    sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]["ApproximateNumberOfMessages"]
                )
            rows.append((rate, base, app, messages))
            print(
                f"rate {rate}/s: baseline p50 {base['p50_ms']:.2f} p99 {base['p99_ms']:.2f} ms "
                f"({base['web_cpu_ms']:.2f} ms CPU each); "
                f"report/add p50 {app['p50_ms']:.2f} p99 {app['p99_ms']:.2f} ms, "
                f"{app['ok_rate']:.0f} accepted/s, errors {app['errors']}, late {app['late']}, "
                f"{app['ok'] / max(messages, 1):.1f} reports/message; CPU per report: web "
                f"{app['web_cpu_ms']:.2f} ms, emulator {app['moto_cpu_ms']:.2f} ms",
                flush=True,
            )
        fresh_queue()
    finally:
        baseline.stop()
        stack.stop()
    report(args, rows, describe_web(settings))
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
