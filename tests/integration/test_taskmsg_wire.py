"""The one wire format over the real queue: a message from shared/model/taskmsg.py, put on the
emulated SQS queue, is run by the real Celery worker.

Two senders of the roll task: the hourly roll gate in AWS (its exact bytes, from the committed
template snapshot) and the app's own tools (a fresh message, as ``safetyheatmap roll`` and
``make run`` build it). The effect to see: only the roll task writes ``rolled_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared.model.taskmsg import ROLL_WINDOWS, celery_body
from shared.store import aws
from shared.store.grids import GridRepository
from tests.infra_snapshot import roll_gate_body
from tests.support import LiveStack, poll

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _fresh_body(stack: LiveStack) -> str:
    return celery_body(ROLL_WINDOWS, [], stack.settings.queue_name)


@pytest.mark.parametrize("build", [lambda _: roll_gate_body(), _fresh_body], ids=["gate", "app"])
def test_the_worker_runs_the_roll_message(
    stack: LiveStack, build: Callable[[LiveStack], str]
) -> None:
    settings = stack.settings
    grids = GridRepository(aws.client(settings, "dynamodb"), settings.grids_table)
    # An hour ago: a short roll (a few day lookups per window), and a value the run must move.
    grids.put_meta("rolled_at", (datetime.now(UTC) - timedelta(hours=1)).isoformat())
    sent = datetime.now(UTC)
    stack.sqs().send_message(QueueUrl=stack.queue_url(), MessageBody=build(stack))

    def rolled_since_sent() -> str | None:
        value = grids.get_meta("rolled_at")
        return value if value and datetime.fromisoformat(value) >= sent else None

    poll(rolled_since_sent, 30, "the worker to run roll_windows and record rolled_at")
