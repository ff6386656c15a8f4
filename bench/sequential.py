"""One client posting reports one after another: the latency a quiet service gives a report.

    .venv/bin/python bench/sequential.py [--requests 200]

Starts the embedded stack with no worker (the acknowledgement path alone; rate limiting off),
then, on one keep-alive connection, alternates a POST of report/add (a random place each) with a
GET /healthz, and times a SendMessage of one report from this process (web/sqs_send.py, its
own connection), REQUESTS of each after a warm-up; prints the p50 / p90 of each and the ratio of
the POST's p50 to the GET's. GET /healthz is the floor of the server: the same middleware and
connection, no validation, no SQS. SendMessage is the floor of the acknowledgement (a 202 only
once SQS accepted the report): a report that finds no send in flight is sent at once
(web/enqueue.py), so a POST should cost about a GET plus a SendMessage, no batching wait.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime

import requests
from benchlib import API, describe_web, load, start_stack

from shared.model.report import parse_submission
from shared.model.taskmsg import STORE_REPORTS, celery_body
from shared.store import aws
from web.sqs_send import SendMessage


def timed(call: requests.Session, method: str, url: str, **kwargs: object) -> float:
    started = time.perf_counter()
    resp = call.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - started) * 1000
    resp.raise_for_status()
    return elapsed


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[round(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(f"load average at start: {load()}", flush=True)
    stack = start_stack(
        {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}, workers=0, prefix="bench-seq-"
    )
    settings = stack.settings()
    posts: list[float] = []
    gets: list[float] = []
    sends: list[float] = []
    try:
        sqs = aws.client(settings, "sqs")
        queue = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        send = SendMessage(
            sqs.meta.endpoint_url,
            sqs.meta.region_name,
            aws.credentials(settings),
            settings.enqueue_timeout,
        )
        rng = random.Random(7)
        with requests.Session() as http:
            for i in range(args.warmup + args.requests):
                body = {
                    "lat": 51.4 + rng.random() * 0.2,
                    "lon": -0.2 + rng.random() * 0.2,
                    "category": "theft",
                }
                post = timed(
                    http,
                    "POST",
                    f"{stack.url}{API}/report/add",
                    data=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                get = timed(http, "GET", f"{stack.url}/healthz")
                fields = parse_submission(body, now=datetime.now(UTC)).to_message()
                item = {"report": fields, "request_id": f"s{i}"}
                message = celery_body(STORE_REPORTS, [[item]], settings.queue_name)
                started = time.perf_counter()
                send(queue, message)
                sent = (time.perf_counter() - started) * 1000
                if i >= args.warmup:
                    posts.append(post)
                    gets.append(get)
                    sends.append(sent)
    finally:
        stack.stop()
    print(f"\ngunicorn: {describe_web(settings)}; one client, {args.requests} of each, sequential")
    print("| request | p50 ms | p90 ms |")
    print("|---|---|---|")
    rows = (("POST report/add", posts), ("GET /healthz", gets), ("SendMessage alone", sends))
    for name, values in rows:
        print(f"| {name} | {statistics.median(values):.2f} | {quantile(values, 0.9):.2f} |")
    print(f"POST / GET p50: {statistics.median(posts) / statistics.median(gets):.2f}")
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
