"""Messages from shared/model/taskmsg.py, read back by kombu's own SQS transport and Celery's
own request parsing (against moto in-process), and compared with what Celery's own producer
(``app.amqp.as_task_v2``) would have sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from celery import Celery
from celery.worker.request import Request
from kombu import Connection
from kombu.message import Message
from moto import mock_aws

from shared.model import taskmsg
from tests.infra_snapshot import roll_gate_body

QUEUE = "safetyheatmap-reports"  # the gate's body routes to the deployed queue's name
REGION = "us-east-1"
TASKS = (taskmsg.STORE_REPORT, taskmsg.STORE_REPORTS, taskmsg.RECOMPUTE, taskmsg.ROLL_WINDOWS)
# Headers whose value Celery's producer decides the same way for the same call.
CELERY_DECIDES = ("lang", "task", "id", "root_id", "parent_id", "group", "group_index", "shadow")


def _noop(*args: Any, **kwargs: Any) -> None:
    """Stands in for every task: only the message is under test."""


@pytest.fixture
def app() -> Celery:
    app = Celery("taskmsg-test", set_as_current=False)
    for name in TASKS:
        app.task(name=name)(_noop)
    return app


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        client.create_queue(QueueName=QUEUE)
        yield client


def received(sqs: Any, body: str) -> Message:
    """Put ``body`` on the queue and take it off again with kombu's SQS transport."""
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"], MessageBody=body)
    with Connection("sqs://", transport_options={"region": REGION}) as connection:
        queue = connection.SimpleQueue(QUEUE)
        try:
            message: Message = queue.get(timeout=5)
            message.ack()
        finally:
            queue.close()
    return message


def request(app: Celery, message: Message) -> Request:
    return Request(message, app=app, task=app.tasks[message.headers["task"]])


def test_a_batch_reads_back_as_celery_reads_it(app: Celery, sqs: Any) -> None:
    batch = [{"report": {"lat": 51.5, "lon": -0.12}, "request_id": "r-1"}]
    body = taskmsg.celery_body(taskmsg.STORE_REPORTS, [batch], QUEUE, task_id="t-1")
    message = received(sqs, body)
    assert message.content_type == "application/json"
    req = request(app, message)
    assert (req.task_name, req.id) == (taskmsg.STORE_REPORTS, "t-1")
    assert (req.args, req.kwargs) == ([batch], {})
    assert req.request_dict["origin"] == "safetyheatmap-web"
    assert req.request_dict["ignore_result"] is True
    assert req.delivery_info["routing_key"] == QUEUE


def test_pre_encoded_arguments_read_back_the_same(app: Celery, sqs: Any) -> None:
    """The web joins reports it encoded on arrival (celery_body_encoded)."""
    reports = [{"report": {"n": n}, "request_id": f"r-{n}"} for n in range(3)]
    args_json = "[[" + ",".join(taskmsg.encode(r) for r in reports) + "]]"
    body = taskmsg.celery_body_encoded(taskmsg.STORE_REPORTS, args_json, QUEUE)
    req = request(app, received(sqs, body))
    assert (req.args, req.kwargs) == ([reports], {})


def test_headers_are_those_of_celerys_own_producer(app: Celery) -> None:
    ours = json.loads(base64.b64decode(taskmsg.celery_body(taskmsg.RECOMPUTE, [], QUEUE)))
    task_id = ours["headers"]["id"]
    theirs = app.amqp.as_task_v2(task_id, taskmsg.RECOMPUTE, args=[], kwargs={})
    # Celery's extra headers (stamps, replaced_task_nesting) are optional to its worker.
    assert set(ours["headers"]) <= set(theirs.headers)
    for key in CELERY_DECIDES:
        assert ours["headers"][key] == theirs.headers[key], key
    assert ours["headers"]["timelimit"] == list(theirs.headers["timelimit"])
    assert ours["properties"]["correlation_id"] == theirs.properties["correlation_id"]
    args, kwargs, embed = json.loads(base64.b64decode(ours["body"]))
    assert [args, kwargs, embed] == [list(theirs.body[0]), theirs.body[1], theirs.body[2]]


def test_headers_override_and_a_fixed_delivery_tag_give_fixed_bytes() -> None:
    def build() -> str:
        return taskmsg.celery_body(
            taskmsg.ROLL_WINDOWS,
            [],
            QUEUE,
            task_id="fixed",
            delivery_tag="fixed",
            headers={"origin": "eventbridge-scheduler"},
        )

    assert build() == build()
    envelope = json.loads(base64.b64decode(build()))
    assert envelope["headers"]["origin"] == "eventbridge-scheduler"
    assert envelope["properties"]["delivery_tag"] == "fixed"
    assert list(envelope["headers"]).index("origin") == 14  # overridden in place
    fresh = json.loads(base64.b64decode(taskmsg.celery_body(taskmsg.ROLL_WINDOWS, [], QUEUE)))
    assert fresh["properties"]["delivery_tag"] != fresh["headers"]["id"]


def test_the_roll_gates_message_reads_back_as_roll_windows(app: Celery, sqs: Any) -> None:
    """The bytes in the committed template are still what taskmsg builds, and Celery reads them
    as the roll task with no arguments."""
    body = roll_gate_body()
    envelope = json.loads(base64.b64decode(body))
    task_id = envelope["headers"]["id"]
    assert body == taskmsg.celery_body(
        taskmsg.ROLL_WINDOWS,
        [],
        QUEUE,
        task_id=task_id,
        delivery_tag=task_id,
        headers={"origin": "eventbridge-scheduler"},
    )
    req = request(app, received(sqs, body))
    assert (req.task_name, req.id, req.args, req.kwargs) == (taskmsg.ROLL_WINDOWS, task_id, [], {})
