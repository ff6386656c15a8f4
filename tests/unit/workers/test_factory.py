"""How the worker's consumer hands report messages to the pool (``workers.factory``): several
in one pass, each acknowledged by its own fate; a retry alone, the classic way."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from billiard.exceptions import WorkerLostError
from celery import Celery
from kombu.message import Message

from shared.config.settings import Settings
from shared.model.taskmsg import STORE_REPORTS
from tests.unit.workers.test_tasks import item
from workers import factory
from workers.factory import BatchedStore
from workers.ingest import ACK, REJECT

# Another module's app (test_sizing) may have registered the task names in this process first.
pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")


class FakeTimer:
    def __init__(self) -> None:
        self.after: list[tuple[float, Any, mock.Mock]] = []
        self.at: list[Any] = []

    def call_after(self, secs: float, fun: Any) -> mock.Mock:
        entry = mock.Mock()
        self.after.append((secs, fun, entry))
        return entry

    def call_at(self, eta: float, fun: Any, args: Any = (), priority: int = 0) -> mock.Mock:
        self.at.append((eta, fun, args))
        return mock.Mock()


class FakePool:
    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any, dict[str, Any]]] = []

    def apply_async(self, target: Any, args: Any, **options: Any) -> None:
        self.jobs.append((target, args, options))


@pytest.fixture(scope="module")
def app() -> Celery:
    return factory.make_celery(Settings(), services=mock.Mock)


@pytest.fixture
def task(app: Celery, monkeypatch: pytest.MonkeyPatch) -> BatchedStore:
    """The app's store task, three messages a pass (set on the task itself: Celery's shared
    tasks make an app of a process that made one before reach the first app's task)."""
    found = app.tasks[STORE_REPORTS]
    assert isinstance(found, BatchedStore)
    monkeypatch.setattr(found, "batch_messages", 3)
    monkeypatch.setattr(found, "batch_linger_s", 0.05)
    return found


def consumer() -> mock.MagicMock:
    c = mock.MagicMock()
    c.hostname, c.event_dispatcher, c.connection_errors = "w@test", None, ()
    c.timer, c.pool = FakeTimer(), FakePool()
    c.disable_rate_limits = True
    return c


def kombu_message(app: Celery, eta: str | None = None) -> tuple[Message, mock.Mock, mock.Mock]:
    sig = app.amqp.as_task_v2(str(uuid.uuid4()), STORE_REPORTS, args=[[item()]], kwargs={})
    headers = dict(sig.headers)
    if eta:
        headers["eta"] = eta
    channel = mock.Mock()
    msg = Message(
        body=json.dumps(sig.body),
        headers=headers,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_info={"routing_key": "q", "exchange": ""},
        properties=dict(sig.properties),
        channel=channel,
        delivery_tag=str(uuid.uuid4()),
    )
    return msg, mock.Mock(), mock.Mock()


def test_messages_wait_for_a_full_pass_or_the_linger(app: Celery, task: BatchedStore) -> None:
    c = consumer()
    handle = task.start_strategy(app, c)
    msgs = [kombu_message(app) for _ in range(4)]
    for m, ack, reject in msgs[:2]:
        handle(m, None, ack, reject, [])
    assert c.pool.jobs == [] and len(c.timer.after) == 1  # one linger timer for the buffer
    secs, _flush, entry = c.timer.after[0]
    assert secs == task.batch_linger_s == 0.05
    handle(msgs[2][0], None, msgs[2][1], msgs[2][2], [])  # the third fills the pass (3)
    assert entry.cancel.called
    ((target, (passed, received), options),) = c.pool.jobs
    assert target is factory.store_pass and passed is task
    assert [r.id for r in received] == [m.headers["id"] for m, _, _ in msgs[:3]]
    assert received[0].args == json.loads(msgs[0][0].body)[0]  # [[item]]: the task's args
    assert (options["timeout"], options["soft_timeout"]) == (task.time_limit, task.soft_time_limit)
    # The fourth waits for the linger, then goes alone.
    handle(msgs[3][0], None, msgs[3][1], msgs[3][2], [])
    c.timer.after[-1][1]()
    assert len(c.pool.jobs) == 2 and len(c.pool.jobs[1][1][1]) == 1
    # A pass's worth of prefetch on top of the worker's, once per consumer QoS.
    c.qos.increment_eventually.assert_called_once_with(3)


def test_each_message_is_acknowledged_by_its_own_fate(app: Celery, task: BatchedStore) -> None:
    c = consumer()
    handle = task.start_strategy(app, c)
    msgs = [kombu_message(app) for _ in range(3)]
    for m, ack, reject in msgs:
        handle(m, None, ack, reject, [])
    done = c.pool.jobs[0][2]["callback"]
    done([ACK, REJECT, ACK])
    assert [a.called for _, a, _ in msgs] == [True, False, True]
    assert [r.called for _, _, r in msgs] == [False, True, False]
    assert msgs[1][2].call_args.args[-1] is False  # not requeued: SQS redelivers, then the DLQ


def test_a_lost_pool_process_requeues_its_pass_and_a_failed_one_leaves_it(
    app: Celery, task: BatchedStore
) -> None:
    for error, requeue in ((WorkerLostError("killed"), True), (RuntimeError("bug"), False)):
        c = consumer()
        handle = task.start_strategy(app, c)
        msgs = [kombu_message(app) for _ in range(3)]
        for m, ack, reject in msgs:
            handle(m, None, ack, reject, [])
        c.pool.jobs[0][2]["error_callback"](SimpleNamespace(exception=error))
        assert not any(a.called for _, a, _ in msgs)
        assert [r.call_args.args[-1] for _, _, r in msgs] == [requeue] * 3


def test_a_retry_with_an_eta_runs_alone_the_classic_way(app: Celery, task: BatchedStore) -> None:
    c = consumer()
    handle = task.start_strategy(app, c)
    m, ack, reject = kombu_message(app, eta="2099-01-01T00:00:00+00:00")
    handle(m, None, ack, reject, [])
    assert c.pool.jobs == [] and c.timer.after == [] and len(c.timer.at) == 1
