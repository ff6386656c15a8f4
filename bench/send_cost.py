"""What signing costs the web: botocore's SigV4 signer (web/awsjson.py) against a hand-written one.

    .venv/bin/python bench/send_cost.py [--part calls|ack|both] [--rates 100,500]
        [--duration 10] [--rounds 2] [--batch-size N] [--calls 300] [--reports 25]

``ack`` (the decision's figure): the embedded stack with no worker, its web (botocore's
signer), and a second web under the same gunicorn configuration whose two lean calls sign by
hand (``HandSigned``, the signer the web had; kept here as the reference). At each rate wrk
posts reports (bench/wrk.lua, open loop) to each web in turn, ROUNDS times alternating; prints
the web process's CPU per accepted report (its process tree, /proc), reports per SQS message
and p50, and the share of the web's CPU the hand signer would save. The queue is drained as
workers would (bench/load_ack.py's Drainer).

``calls``: this process's CPU per call, CALLS calls ROUNDS times alternating, for SendMessage
of a REPORTS-report batch and the beacon's GetItem, each by boto3, by web/awsjson.py and by the
hand signer, and the signing alone; the emulator's work stays out (time.process_time), wall
time is beside it. Batches differ from step to step with the box's load (reports per message
decide most of the CPU per report), so the signers' difference per report is also the
signing alone per call divided by reports per message.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):  # `python bench/send_cost.py`, and gunicorn's import
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchlib import API, describe_web, load, start_stack, tree_cpu, wrk  # noqa: E402
from load_ack import Drainer  # noqa: E402

from shared.dev.devstack import BIN, Stack, free_port, http_ok, wait_until  # noqa: E402
from shared.model.report import parse_submission  # noqa: E402
from shared.model.taskmsg import STORE_REPORTS, celery_body  # noqa: E402
from shared.store import aws  # noqa: E402
from shared.store.grids import GridRepository  # noqa: E402
from shared.store.keys import TILES_WRITTEN  # noqa: E402
from web import beacon, sqs_send  # noqa: E402
from web.awsjson import CONTENT_TYPE, AwsJson  # noqa: E402
from web.replay import WsgiApp  # noqa: E402


class HandSigned(AwsJson):
    """The reference: Signature Version 4 written out, the day's signing key derived once."""

    _day_key: tuple[tuple[str, str], bytes] | None = None

    def headers(self, operation: str, payload: bytes) -> dict[str, str]:
        access_key, secret, token = self._credentials()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self._url.split("/")[2],
            "x-amz-date": stamp,
            "x-amz-target": f"{self._target}.{operation}",
        }
        if token:
            headers["x-amz-security-token"] = token
        names = ";".join(sorted(headers))
        lines = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers))
        digest = hashlib.sha256(payload).hexdigest()
        canonical = f"POST\n/\n\n{lines}\n{names}\n{digest}"
        scope = f"{stamp[:8]}/{self._region}/{self._service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
        to_sign += hashlib.sha256(canonical.encode()).hexdigest()
        signature = hmac.new(self._key(secret, stamp[:8]), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature.hexdigest()}"
        )
        return headers

    def _key(self, secret: str, day: str) -> bytes:
        if self._day_key is None or self._day_key[0] != (secret, day):
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day_key = ((secret, day), key)
        return self._day_key[1]


def create_hand_signed() -> WsgiApp:
    """gunicorn's target for the reference web: the real app, its lean calls signed by hand."""
    from web.wsgi import create  # noqa: PLC0415 - after the patch below

    sqs_send.AwsJson = HandSigned  # type: ignore[misc]
    beacon.AwsJson = HandSigned  # type: ignore[misc]
    return create()


# --- ack: the web's CPU per report ---------------------------------------------------------
def start_hand_web(stack: Stack) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = stack.run_dir / "web-hand.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-c",
                str(ROOT / "web" / "gunicorn_conf.py"),
                "--pythonpath",
                f"{ROOT / 'bench'},{ROOT}",
                "send_cost:create_hand_signed()",
            ],
            cwd=ROOT,
            env=stack.env | {"SAFETYHEATMAP_PORT": str(port)},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/readyz"), 60, "hand-signed web", proc, log)
    return proc, url


def one_step(sqs: Any, queue: str, pid: int, url: str, rate: int, duration: int) -> list[float]:
    """[web CPU ms per accepted report, reports per message, p50 ms]."""
    drainer = Drainer(sqs, queue)
    cpu = tree_cpu(pid)
    result = wrk(
        f"{url}{API}/report/add",
        duration=duration,
        rate=rate,
        connections=64,
        method="POST",
        body="report",
    )
    cpu = tree_cpu(pid) - cpu
    deadline = time.monotonic() + 15
    while drainer.reports < result["ok"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the drainer takes what was sent
    messages, reports = drainer.close()
    return [cpu * 1000 / max(result["ok"], 1), reports / max(messages, 1), result["p50_ms"]]


def ack(args: argparse.Namespace) -> None:
    print(f"load average at start: {load()}", flush=True)
    env = {"SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0"}
    if args.batch_size:
        env["SAFETYHEATMAP_ENQUEUE_BATCH_SIZE"] = str(args.batch_size)
    stack = start_stack(env, 0, "bench-send-")
    hand = None
    try:
        hand, hand_url = start_hand_web(stack)
        (web,) = (p.popen.pid for p in stack.procs if p.name == "web")
        webs = {
            "botocore (web/awsjson.py)": (web, stack.url),
            "hand (reference)": (hand.pid, hand_url),
        }
        settings = stack.settings()
        sqs = aws.client(settings, "sqs")
        queue = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        for pid, url in webs.values():  # warm: imports, connections, caches
            one_step(sqs, queue, pid, url, 100, 2)
        rows = []
        for rate in [int(r) for r in args.rates.split(",")]:
            runs: dict[str, list[list[float]]] = {name: [] for name in webs}
            for _ in range(args.rounds):
                for name, (pid, url) in webs.items():
                    runs[name].append(one_step(sqs, queue, pid, url, rate, args.duration))
                    print(f"{rate}/s {name}: {runs[name][-1]}", flush=True)
            rows.append((rate, runs))
    finally:
        if hand is not None:
            hand.terminate()
            hand.wait(20)
        stack.stop()
    print(f"\ngunicorn: {describe_web(settings)}; wrk -c64, {args.duration} s a step, open loop")
    print("| offered/s | signer | web CPU ms per report (rounds) | median | reports/msg | p50 ms |")
    print("|---|---|---|---|---|---|")
    for rate, runs in rows:
        medians = {}
        for name, steps in runs.items():
            medians[name] = statistics.median(s[0] for s in steps)
            cpus = ", ".join(f"{s[0]:.3f}" for s in steps)
            per_msg = statistics.median(s[1] for s in steps)
            p50 = statistics.median(s[2] for s in steps)
            print(f"| {rate} | {name} | {cpus} | {medians[name]:.3f} | {per_msg:.1f} | {p50:.2f} |")
        boto, hand_cpu = medians.values()
        saves = 1 - hand_cpu / boto
        print(f"| {rate} | hand / botocore | | {hand_cpu / boto:.3f} (saves {saves:.1%}) | | |")
    print(f"\nload average at end: {load()}")


# --- calls: this process's CPU per call ----------------------------------------------------
def per_call(send: Callable[[], object], calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        send()
    return (
        (time.process_time() - cpu) / calls * 1000,
        (time.perf_counter() - wall) / calls * 1000,
    )


def calls(args: argparse.Namespace) -> None:
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-send-")))
    try:
        stack.start_emulator()
        stack.provision()
        settings = stack.settings()
        sqs = aws.client(settings, "sqs", timeout=settings.enqueue_timeout, attempts=2)
        url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        creds = aws.credentials(settings)
        endpoint, region = sqs.meta.endpoint_url, sqs.meta.region_name
        lean = sqs_send.SendMessage(endpoint, region, creds, settings.enqueue_timeout)
        hand = sqs_send.SendMessage(endpoint, region, creds, settings.enqueue_timeout)
        hand.api = HandSigned(endpoint, region, "sqs", "AmazonSQS", creds, 3.0)
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
        get = beacon.for_client(ddb, creds, settings.grids_table, TILES_WRITTEN)
        get_hand = beacon.MetaItem(
            HandSigned(ddb.meta.endpoint_url, region, "dynamodb", "DynamoDB_20120810", creds, 3.0),
            settings.grids_table,
            TILES_WRITTEN,
        )
        table: dict[str, dict[str, Callable[[], object]]] = {
            f"SendMessage of {args.reports} reports ({len(message):,} bytes)": {
                "boto3": lambda: sqs.send_message(QueueUrl=url, MessageBody=message),
                "web/sqs_send.py (botocore signer)": lambda: lean(url, message),
                "hand signer (reference)": lambda: hand(url, message),
            },
            "GetItem of tiles-written": {
                "boto3": lambda: grids.get_meta(TILES_WRITTEN),  # what the web called before
                "web/beacon.py (botocore signer)": get,
                "hand signer (reference)": get_hand,
            },
        }
        payload = message.encode()
        table["Signing alone (headers of that SendMessage)"] = {
            "web/awsjson.py (botocore signer)": lambda: lean.api.headers("SendMessage", payload),
            "hand signer (reference)": lambda: hand.api.headers("SendMessage", payload),
        }
        for what, clients in table.items():
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
            for name, runs in results.items():
                cpus = ", ".join(f"{c:.2f}" for c, _ in runs)
                cpu = statistics.median(c for c, _ in runs)
                wall = statistics.median(w for _, w in runs)
                print(f"| {name} | {cpus} | {cpu:.2f} | {wall:.2f} |")
    finally:
        stack.stop()


def _drain(sqs: Any, url: str) -> None:
    """Delete what was sent (PurgeQueue is allowed once a minute): keeps moto's queue shallow."""
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("calls", "ack", "both"), default="both")
    parser.add_argument("--rates", default="100,500")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reports", type=int, default=25)
    parser.add_argument("--batch-size", type=int, help="ack: ENQUEUE_BATCH_SIZE (1: no batching)")
    args = parser.parse_args()
    if args.part in ("ack", "both"):
        ack(args)
    if args.part in ("calls", "both"):
        calls(args)


if __name__ == "__main__":
    main()
