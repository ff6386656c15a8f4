"""The store task's passes (``workers.tasks.Runner.store_messages``): several messages stored
together, each message's fate from what the pass did for it."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from shared.config.settings import Settings
from shared.model.report import Report
from shared.model.taskmsg import STORE_REPORTS
from tests.unit.workers.support import NOW, World
from workers import ingest
from workers.ingest import ACK, REJECT, Received
from workers.tasks import Runner

PSEUDONYM = "c09699522e2718bef7247c1f3ff190a3"


def item(lat: float = 51.5, lon: float = -0.12, submitter: str = "") -> dict[str, Any]:
    report = Report(str(uuid.uuid4()), lat, lon, "theft", "", NOW, NOW, submitter=submitter)
    return {"report": report.to_message(), "request_id": uuid.uuid4().hex}


def message(*items: dict[str, Any], retries: int = 0, receives: int = 1) -> Received:
    return Received(str(uuid.uuid4()), [list(items)], retries, receives)


def runner_for(world: World, **env: str) -> tuple[Runner, list[str]]:
    settings = Settings.from_env({f"SAFETYHEATMAP_{k}": v for k, v in env.items()})
    services = SimpleNamespace(reports=world.reports, grids=world.grids, pyramid=world.pyramid)
    runner = Runner(settings, lambda: services)  # type: ignore[arg-type, return-value]
    triggers: list[str] = []
    runner.send_recompute = lambda: triggers.append("recompute")
    return runner, triggers


def store(runner: Runner, messages: list[Received]) -> list[str]:
    return runner.store_messages(STORE_REPORTS, messages)


def test_a_pass_stores_every_message_and_schedules_one_recompute(world: World) -> None:
    runner, triggers = runner_for(world)
    messages = [message(item(), item()), message(item(lon=-0.1)), message(item(lat=51.6))]
    assert store(runner, messages) == [ACK, ACK, ACK]
    ids = {i["report"]["id"] for m in messages for i in m.args[0]}
    assert set(world.reports.ids()) == ids
    assert triggers == ["recompute"]  # one flag, one trigger for the whole pass
    marked = {m.partition for m in world.grids.dirty_markers()}
    assert len(marked) >= 2


def test_a_pass_claims_a_pseudonym_once_across_its_messages(world: World) -> None:
    runner, _ = runner_for(world)
    calls: list[int] = []
    claim = world.reports.claim_units

    def counted(batch: list[Report]) -> list[bool]:
        calls.append(len(batch))
        return claim(batch)

    with mock.patch.object(world.reports, "claim_units", counted):
        store(runner, [message(item(submitter=PSEUDONYM)), message(item(submitter=PSEUDONYM))])
    assert calls == [2]  # one call for the pass: the second report of the pseudonym is no unit
    points = [p for part in world.reports.partitions() for p in world.reports.points(part)]
    assert sorted(p.unit for p in points) == [False, True]


def test_a_malformed_message_is_rejected_and_the_others_acknowledged(world: World) -> None:
    runner, _ = runner_for(world)
    good = message(item())
    forged = message(item(), {"report": {"lat": 1000}})
    empty = Received(str(uuid.uuid4()), [[]])
    fates = store(runner, [good, forged, empty])
    assert fates == [ACK, REJECT, REJECT]
    # The valid report of the forged message is stored all the same (a redrive is a no-op).
    want = {good.args[0][0]["report"]["id"], forged.args[0][0]["report"]["id"]}
    assert set(world.reports.ids()) == want


def test_a_transient_failure_sends_each_message_again_with_its_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, triggers = runner_for(world, TASK_MAX_RETRIES="3")
    error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Put")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(ingest, "store_many", failing)
    sent: list[tuple[Any, str, int, float]] = []
    runner.resend = lambda *args: sent.append(args)
    fresh, last = message(item()), message(item(), retries=3)
    assert store(runner, [fresh, last]) == [ACK, REJECT]
    # The first goes back to the queue with its retry count (the copy is sent before the
    # original is deleted); the last try's message is left to SQS, for the DLQ.
    ((items, task_id, retries, countdown),) = sent
    assert (items, task_id, retries) == (fresh.args[0], fresh.id, 1)
    assert 0 < countdown <= 20

    def away(*args: Any) -> None:
        raise ConnectionError("queue away")

    runner.resend = away
    assert store(runner, [message(item())]) == [REJECT]  # SQS redelivers it
    assert triggers == []
