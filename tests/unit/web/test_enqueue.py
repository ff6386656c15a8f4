"""The batching enqueuer against a fake SQS client: batches, acknowledgement per message, 503s."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from shared.model.report import parse_submission
from shared.obs.metrics import Metrics
from web import enqueue as enqueue_module
from web.enqueue import SQS_MESSAGE_LIMIT, STORE_REPORTS, QueueUnavailable, SqsEnqueuer
from workers import tasks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class FakeSqs:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.bodies: list[str] = []
        self.fail: set[int] = set()  # indices of send calls that fail
        self.hang = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()

    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 - boto3's names
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {}}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, str]:  # noqa: N803
        with self.lock:
            index = self.calls
            self.calls += 1
        if self.hang.is_set():
            time.sleep(2)
        time.sleep(self.delay)
        if index in self.fail:
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        with self.lock:
            self.bodies.append(MessageBody)
        return {"MessageId": str(index)}

    def messages(self) -> list[tuple[dict[str, Any], list[Any]]]:
        out = []
        for body in self.bodies:
            envelope = json.loads(base64.b64decode(body))
            args = json.loads(base64.b64decode(envelope["body"]))[0]
            out.append((envelope["headers"], args))
        return out


def report(i: int, description: str = "") -> Any:
    body: dict[str, Any] = {"lat": 10 + i * 1e-4, "lon": 20.0, "category": "theft"}
    if description:
        body["description"] = description
    return parse_submission(body, now=NOW)


def enqueuer(sqs: FakeSqs, **kwargs: Any) -> SqsEnqueuer:
    lines: list[dict[str, Any]] = []
    return SqsEnqueuer(sqs, "q", stats=Metrics(lines.append, interval=1e9), **kwargs)


def post_concurrently(enq: SqsEnqueuer, n: int) -> list[BaseException | None]:
    start = threading.Barrier(n)

    def one(i: int) -> BaseException | None:
        start.wait()
        try:
            enq(report(i), f"req-{i}")
        except QueueUnavailable as exc:
            return exc
        return None

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_the_web_and_the_worker_agree_on_the_batch_task_name() -> None:
    assert STORE_REPORTS == tasks.STORE_REPORTS == "safetyheatmap.store_reports"


def test_a_lone_report_goes_as_a_batch_of_one() -> None:
    sqs = FakeSqs()
    enq = enqueuer(sqs)
    enq(report(0), "req-0")
    ((headers, args),) = sqs.messages()
    assert headers["task"] == STORE_REPORTS
    (items,) = args
    assert items == [
        {"report": report(0).to_message() | {"id": items[0]["report"]["id"]}, "request_id": "req-0"}
    ]


def test_sequential_reports_wait_for_no_timer() -> None:
    # 100 reports one after another, each alone: ~0.1 ms apiece here; any linger (the old rule
    # held a report that came within it of the previous send) would take 100 of them.
    sqs = FakeSqs()
    enq = enqueuer(sqs)
    started = time.monotonic()
    for i in range(100):
        enq(report(i), f"req-{i}")
    assert time.monotonic() - started < 1.0
    assert [len(items) for _, (items,) in sqs.messages()] == [1] * 100


def test_concurrent_reports_share_messages_and_each_is_sent_once() -> None:
    sqs = FakeSqs(delay=0.05)
    enq = enqueuer(sqs, batch_size=50)
    assert post_concurrently(enq, 40) == [None] * 40
    messages = sqs.messages()
    assert len(messages) < 20  # batches formed while sends were in flight
    request_ids = [item["request_id"] for _, (items,) in messages for item in items]
    assert sorted(request_ids) == sorted(f"req-{i}" for i in range(40))


def test_batches_respect_the_batch_size() -> None:
    sqs = FakeSqs(delay=0.05)
    enq = enqueuer(sqs, batch_size=3)
    assert post_concurrently(enq, 20) == [None] * 20
    assert all(len(items) <= 3 for _, (items,) in sqs.messages())
    assert sum(len(items) for _, (items,) in sqs.messages()) == 20


def test_a_failed_send_fails_exactly_the_requests_of_its_message() -> None:
    sqs = FakeSqs(delay=0.05)
    sqs.fail = {0}
    enq = enqueuer(sqs, batch_size=5)
    results = post_concurrently(enq, 12)
    failed = [r for r in results if r is not None]
    assert failed and all(isinstance(r, QueueUnavailable) for r in failed)
    sent = sum(len(items) for _, (items,) in sqs.messages())
    assert sent + len(failed) == 12  # every request answered: accepted iff its message was
    enq(report(99), "after")  # the enqueuer recovers
    assert sqs.messages()[-1][1][0][0]["request_id"] == "after"


def test_a_queue_that_does_not_answer_is_a_503_within_the_timeout() -> None:
    sqs = FakeSqs()
    sqs.hang.set()
    enq = enqueuer(sqs, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        enq(report(0), "slow")
    assert time.monotonic() - started < 1.0


def test_large_reports_are_split_to_stay_under_the_sqs_message_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enqueue_module, "SQS_MESSAGE_LIMIT", 40_000)
    sqs = FakeSqs(delay=0.05)
    enq = enqueuer(sqs, batch_size=50)
    text = "\U0001f6a8" * 500  # the longest description, escaped: ~6 KB of JSON
    start = threading.Barrier(12)

    def one(i: int) -> None:
        start.wait()
        enq(report(i, text), f"r{i}")

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(one, range(12)))
    assert len(sqs.bodies) >= 2
    assert all(len(b) <= 40_000 for b in sqs.bodies)
    assert sum(len(items) for _, (items,) in sqs.messages()) == 12
    assert SQS_MESSAGE_LIMIT == 256 * 1024


def test_metrics_count_latency_and_batch_sizes() -> None:
    lines: list[dict[str, Any]] = []
    stats = Metrics(lines.append, interval=1e9)
    enq = SqsEnqueuer(FakeSqs(), "q", stats=stats)
    enq(report(0), "a")
    stats.flush()
    (doc,) = lines
    assert doc["EnqueueBatchSize"] == [1.0] and len(doc["EnqueueLatency"]) == 1


def test_a_report_queued_behind_a_hung_send_is_a_503_and_is_never_sent() -> None:
    sqs = FakeSqs()
    sqs.hang.set()  # every send takes 2 s
    enq = enqueuer(sqs, timeout_s=0.3)
    outcomes: list[BaseException] = []

    def hung() -> None:
        try:
            enq(report(0), "a")
        except QueueUnavailable as exc:
            outcomes.append(exc)

    first = threading.Thread(target=hung)
    first.start()
    time.sleep(0.05)  # the first report's send is in flight
    started = time.monotonic()
    with pytest.raises(QueueUnavailable, match="timed out"):
        enq(report(1), "behind")
    assert time.monotonic() - started < 1.0  # answered by the watchdog, not after the send
    first.join()
    assert len(outcomes) == 1  # the hung send's own request: a 503 too
    sqs.hang.clear()
    deadline = time.monotonic() + 10
    while not sqs.bodies and time.monotonic() < deadline:  # the hung send ends (accepted)
        time.sleep(0.05)
    enq(report(2), "later")
    request_ids = [item["request_id"] for _, (items,) in sqs.messages() for item in items]
    assert "behind" not in request_ids and request_ids[-1] == "later"


def test_expire_answers_only_requests_past_the_deadline() -> None:
    enq = enqueuer(FakeSqs(), timeout_s=1.0)
    waiting = [enqueue_module._Waiting("{}", arrived=at) for at in (10.0, 10.5, 11.5)]
    enq._waiting = list(waiting)
    assert enq.expire(now=11.7) == 2  # waited 1.7 and 1.2 s; the third 0.2 s
    assert [w.done.is_set() for w in waiting] == [True, True, False]
    assert waiting[0].error and enq._waiting == [waiting[2]]
