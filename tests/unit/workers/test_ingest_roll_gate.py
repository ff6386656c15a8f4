"""The roll gate (infra/safetyheatmap_infra/roll_gate, a Lambda) against the app's own storage.

The gate decides, from the reports table, whether the hourly roll-windows message is worth
waking a worker for. It must never skip an hour in which the roll would have had something to
do: these tests run it against what ``ReportRepository`` writes and what ``ingest.roll_windows``
marks, in-process against mock_aws, so day keys and window lengths cannot drift apart.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.geo.tiles import WINDOWS
from tests.unit.workers.support import NOW, World, make_world
from workers import ingest

GATE = Path(__file__).resolve().parents[3] / "infra/safetyheatmap_infra/roll_gate/index.py"


def load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("roll_gate", GATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gate = load_gate()


class Outbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:  # noqa: N803 - boto3's
        self.sent.append(MessageBody)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="1")


def due(world: World, monkeypatch: pytest.MonkeyPatch, now: Any) -> bool:
    monkeypatch.setenv("REPORTS_TABLE", world.reports._table)
    monkeypatch.setenv("GRIDS_TABLE", world.grids._table)
    monkeypatch.setenv("QUEUE_URL", "q")
    monkeypatch.setenv("ROLL_BODY", "roll")
    outbox = Outbox()
    gate.handler({}, None, clients=(world.reports._ddb, outbox), now=now)
    return outbox.sent == ["roll"]


def forget_marks(world: World) -> None:
    world.grids.clear_markers(world.grids.dirty_markers())
    while found := world.grids.background_markers():
        for marker in found:
            world.grids.clear_background(marker)


def test_the_gate_knows_the_apps_windows() -> None:
    spans = sorted(span.days for span in WINDOWS.values() if span is not None)
    assert list(gate.SPANS_DAYS) == spans


def test_the_gate_never_skips_an_hour_the_hourly_roll_had_work_in(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three days, hour by hour: wherever a roll an hour after the previous one marks a
    partition, the gate sends the message; in hours when no window edge meets a report's day,
    it does not (the edges here fall between 12 hours before NOW and 36 hours after)."""
    for age in (timedelta(days=7, hours=5), timedelta(days=29, hours=-3), timedelta(days=364)):
        world.add(0.5, 0.5, occurred_at=NOW - age)
    forget_marks(world)
    skipped, marked_hours = [], 0
    for hour in range(-24, 48):
        now = NOW + timedelta(hours=hour)
        world.grids.put_meta("rolled_at", (now - timedelta(hours=1)).isoformat())
        marked = ingest.roll_windows(world.reports, world.grids, now)
        forget_marks(world)  # as if their run were done: here only the days decide
        sends = due(world, monkeypatch, now)
        assert sends or marked == 0, f"the gate skipped {now} with {marked} marks"
        marked_hours += marked > 0
        if not sends:
            skipped.append(hour)
    assert marked_hours >= 24
    assert min(skipped) == -24 and max(skipped) == 47  # no worker wakes far from the edges


def test_an_empty_deployment_never_sends(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not due(world, monkeypatch, NOW)


def test_marks_left_waiting_send_the_roll(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a lost trigger leaves behind; the roll is what schedules their recompute."""
    world.add(0.5, 0.5, occurred_at=NOW - timedelta(days=2))
    assert world.grids.has_dirty()
    assert due(world, monkeypatch, NOW)
    world.recompute()
    assert not world.grids.has_dirty()
    assert not due(world, monkeypatch, NOW)
