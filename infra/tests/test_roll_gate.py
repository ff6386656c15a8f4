"""The roll gate's days (pure) and its calls (with fake AWS clients).

tests/unit/workers/test_ingest_roll_gate.py checks the same function against the app's own storage
(moto), so the day keys and window lengths cannot drift apart.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import pytest
from conftest import INFRA

# By path, under its own name: the queue scaler's module is also called `index`.
_spec = importlib.util.spec_from_file_location(
    "roll_gate", INFRA / "safetyheatmap_infra" / "roll_gate" / "index.py"
)
gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate)


def test_days_are_where_each_window_edge_was_in_the_last_two_hours():
    now = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert gate.days_to_check(now) == ["2025-12-01", "2026-11-01", "2026-11-24"]


def test_just_after_midnight_the_day_before_is_checked_too():
    """The edge left yesterday in the last two hours: its last reports are still to drop."""
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert gate.days_to_check(now, (7,)) == ["2026-11-23", "2026-11-24"]


class FakeDynamo:
    def __init__(self, days_with_reports, marks=()):
        self.items = {("reports", f"day#{d}") for d in days_with_reports}
        self.items |= {("grids", pk) for pk in marks}
        self.queries = []

    def query(self, TableName, KeyConditionExpression, ExpressionAttributeValues, **kwargs):  # noqa: N803
        assert KeyConditionExpression == "pk = :pk"
        assert kwargs["Limit"] == 1
        pk = ExpressionAttributeValues[":pk"]["S"]
        self.queries.append((TableName, pk))
        return {"Items": [{"pk": {"S": pk}}] if (TableName, pk) in self.items else []}


class FakeSqs:
    def __init__(self):
        self.sent = []

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803 - boto3 names
        self.sent.append((QueueUrl, MessageBody))


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("REPORTS_TABLE", "reports")
    monkeypatch.setenv("GRIDS_TABLE", "grids")
    monkeypatch.setenv("QUEUE_URL", "https://sqs/q")
    monkeypatch.setenv("ROLL_BODY", "the-roll-message")


NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_idle_deployment_sends_nothing_so_no_worker_wakes(env):
    ddb, sqs = FakeDynamo([]), FakeSqs()
    result = gate.handler({}, None, clients=(ddb, sqs), now=NOW)
    assert sqs.sent == []
    assert result["sent"] is False
    assert ddb.queries == [
        ("reports", "day#2025-12-01"),
        ("reports", "day#2026-11-01"),
        ("reports", "day#2026-11-24"),
        ("grids", "dirty"),
        ("grids", "background"),
    ]


def test_reports_at_a_window_edge_send_the_roll_once(env):
    ddb, sqs = FakeDynamo(["2026-11-24", "2026-11-01"]), FakeSqs()
    result = gate.handler({}, None, clients=(ddb, sqs), now=NOW)
    assert sqs.sent == [("https://sqs/q", "the-roll-message")]
    assert result["due"] == ["2026-11-01", "2026-11-24"]


def test_reports_away_from_every_edge_send_nothing(env):
    ddb, sqs = FakeDynamo(["2026-11-30", "2026-11-25", "2026-10-31"]), FakeSqs()
    gate.handler({}, None, clients=(ddb, sqs), now=NOW)
    assert sqs.sent == []


@pytest.mark.parametrize("mark", ["dirty", "background"])
def test_waiting_marks_send_the_roll_which_schedules_their_recompute(env, mark):
    """A trigger lost with a killed worker: the roll is what schedules the marks' run."""
    ddb, sqs = FakeDynamo([], marks=[mark]), FakeSqs()
    result = gate.handler({}, None, clients=(ddb, sqs), now=NOW)
    assert sqs.sent == [("https://sqs/q", "the-roll-message")]
    assert result["marks"] == [mark]
