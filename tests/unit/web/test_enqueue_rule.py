"""The batching rule, step by step: a report is sent at once when no send is in flight; the
reports that arrive while one is in flight go together in the next send (up to the batch size).

A gated sender holds each send until the test releases it, so what is in flight, and what
waits, is decided by the test, not by timing."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from shared.model.report import parse_submission
from shared.obs.metrics import Metrics
from web.enqueue import QueueUnavailable, SqsEnqueuer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DEADLINE_S = 10.0
"""Bounds every wait on a thread, so a broken batcher fails the test instead of hanging it."""


class GatedSender:
    """Each send announces itself on ``entered`` with its request ids and waits for its gate."""

    def __init__(self) -> None:
        self.entered: queue.Queue[tuple[list[str], threading.Event]] = queue.Queue()
        self.fail_next = False

    def __call__(self, url: str, body: str) -> str:
        envelope = json.loads(base64.b64decode(body))
        (items,) = json.loads(base64.b64decode(envelope["body"]))[0]
        gate = threading.Event()
        fail, self.fail_next = self.fail_next, False
        self.entered.put(([item["request_id"] for item in items], gate))
        assert gate.wait(DEADLINE_S)
        if fail:
            raise EndpointConnectionError(endpoint_url=url)
        return "message-id"

    def next_send(self) -> tuple[list[str], threading.Event]:
        return self.entered.get(timeout=DEADLINE_S)


class FakeSqs:
    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 - boto3's names
        return {"QueueUrl": f"http://sqs/{QueueName}"}


class Submitter:
    """One request in a thread: its outcome is None (202) or the exception (503)."""

    def __init__(self, enq: SqsEnqueuer, request_id: str) -> None:
        self.outcome: BaseException | None = None
        body = {"lat": 10.0, "lon": 20.0, "category": "theft"}
        self.thread = threading.Thread(target=self._run, args=(enq, request_id, body))
        self.thread.start()

    def _run(self, enq: SqsEnqueuer, request_id: str, body: dict[str, Any]) -> None:
        try:
            enq(parse_submission(body, now=NOW), request_id)
        except QueueUnavailable as exc:
            self.outcome = exc

    def result(self) -> BaseException | None:
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive()
        return self.outcome


def waiting(enq: SqsEnqueuer) -> int:
    with enq._cond:
        return len(enq._waiting)


def poll(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@pytest.fixture
def sender() -> GatedSender:
    return GatedSender()


@pytest.fixture
def make(sender: GatedSender) -> Callable[..., SqsEnqueuer]:
    def build(**kwargs: Any) -> SqsEnqueuer:
        stats = Metrics(lambda line: None, interval=1e9)
        return SqsEnqueuer(FakeSqs(), "q", send=sender, stats=stats, **kwargs)

    return build


def test_a_report_finding_no_send_in_flight_is_sent_alone_at_once(
    sender: GatedSender, make: Callable[..., SqsEnqueuer]
) -> None:
    enq = make()
    for i in range(3):  # sequential: each finds the previous send ended
        one = Submitter(enq, f"r{i}")
        ids, gate = sender.next_send()  # on its way with nothing else having arrived
        assert ids == [f"r{i}"] and waiting(enq) == 0
        gate.set()
        assert one.result() is None


def test_reports_arriving_during_a_send_go_together_in_the_next(
    sender: GatedSender, make: Callable[..., SqsEnqueuer]
) -> None:
    enq = make()
    first = Submitter(enq, "first")
    ids, gate = sender.next_send()
    assert ids == ["first"]
    during = [Submitter(enq, f"d{i}") for i in range(5)]
    poll(lambda: waiting(enq) == 5)
    assert sender.entered.empty()  # one send in flight at a time
    gate.set()
    assert first.result() is None
    ids, gate = sender.next_send()
    assert sorted(ids) == [f"d{i}" for i in range(5)]  # all of them, in one message
    assert all(s.thread.is_alive() for s in during)  # a 202 only once SQS accepted
    gate.set()
    assert [s.result() for s in during] == [None] * 5


def test_more_than_a_message_holds_goes_in_back_to_back_sends(
    sender: GatedSender, make: Callable[..., SqsEnqueuer]
) -> None:
    enq = make(batch_size=2)
    first = Submitter(enq, "first")
    sender.next_send()[1].set()
    assert first.result() is None
    first = Submitter(enq, "again")
    _, gate = sender.next_send()
    during = [Submitter(enq, f"d{i}") for i in range(5)]
    poll(lambda: waiting(enq) == 5)
    gate.set()
    sizes = []
    for _ in range(3):
        ids, gate = sender.next_send()
        sizes.append(len(ids))
        gate.set()
    assert sizes == [2, 2, 1]
    assert [s.result() for s in [first, *during]] == [None] * 6


def test_a_failed_send_fails_its_own_reports_only(
    sender: GatedSender, make: Callable[..., SqsEnqueuer]
) -> None:
    enq = make()
    first = Submitter(enq, "first")
    _, gate = sender.next_send()
    during = [Submitter(enq, f"d{i}") for i in range(3)]
    poll(lambda: waiting(enq) == 3)
    sender.fail_next = True  # the send that carries the three
    gate.set()
    assert first.result() is None
    _, gate = sender.next_send()
    gate.set()
    assert all(isinstance(s.result(), QueueUnavailable) for s in during)
    after = Submitter(enq, "after")
    ids, gate = sender.next_send()
    assert ids == ["after"]  # the next report still goes at once, alone
    gate.set()
    assert after.result() is None
