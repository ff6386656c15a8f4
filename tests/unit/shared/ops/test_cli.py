"""The ops command line: help everywhere, scale (local and ECS), DLQ, status, seed data, remove."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.config.settings import Settings
from shared.model.report import Report, parse_submission
from shared.model.taskmsg import RECOMPUTE, STORE_REPORTS, celery_body
from shared.ops import cli, dlq, seed
from shared.store.grids import GridRepository
from shared.store.provision import provision
from shared.store.reports import ReportRepository
from tests.unit.shared.ops.support import write_state

COMMANDS = [
    [],
    ["init"],
    ["settings"],
    ["status"],
    ["scale"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "redrive"],
    ["rebuild"],
    ["seed"],
    ["roll"],
    ["remove"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([*argv, "--help"])
    assert exit_.value.code == 0
    assert "usage: safetyheatmap" in capsys.readouterr().out


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in list(os.environ):
        if var.startswith("SAFETYHEATMAP_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def test_local_scale_asks_the_running_stack_and_waits_until_it_obeyed(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    write_state(state, 1)
    control = tmp_path / "control.json"
    seen: list[int] = []

    def stack_loop() -> None:  # what `make run` does with the control file
        for _ in range(200):
            if control.exists():
                wanted = json.loads(control.read_text())["workers"]
                control.unlink()
                seen.append(wanted)
                write_state(state, wanted)
                return
            threading.Event().wait(0.02)

    thread = threading.Thread(target=stack_loop)
    thread.start()
    code = cli.main(["--local", "--stack", str(state), "scale", "--workers", "0"])
    thread.join()
    assert code == 0 and seen == [0]
    assert (
        cli.main(["--local", "--stack", str(state), "scale", "--workers", "2", "--timeout", "0.3"])
        == 1
    )  # nobody obeys now: a clear failure, not a hang


def test_aws_scale_updates_the_ecs_worker_service(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ecs = boto3.client("ecs", region_name="us-east-1")
    settings = Settings()
    ecs.create_cluster(clusterName=settings.ecs_cluster)
    ecs.register_task_definition(
        family="worker",
        containerDefinitions=[{"name": "worker", "image": "worker:1", "memory": 512}],
    )
    ecs.create_service(
        cluster=settings.ecs_cluster,
        serviceName=settings.ecs_worker_service,
        taskDefinition="worker",
        desiredCount=1,
    )
    assert cli.main(["--aws", "scale", "--workers", "3"]) == 0
    (service,) = ecs.describe_services(
        cluster=settings.ecs_cluster, services=[settings.ecs_worker_service]
    )["services"]
    assert service["desiredCount"] == 3
    assert "desired 3" in capsys.readouterr().out
    assert cli.main(["--aws", "scale", "--workers", "0"]) == 0
    (service,) = ecs.describe_services(
        cluster=settings.ecs_cluster, services=[settings.ecs_worker_service]
    )["services"]
    assert service["desiredCount"] == 0


def _batch_body(retries: int) -> str:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    item = {
        "report": parse_submission(
            {"lat": 1.0, "lon": 2.0, "category": "theft", "description": "secret text"}, now=now
        ).to_message(),
        "request_id": "req-1",
    }
    return celery_body(STORE_REPORTS, [[item]], "q", headers={"retries": retries})


def test_dlq_list_moves_nothing_and_redrive_moves_everything_with_retries_reset(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings()
    provision(settings)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.get_queue_url(QueueName=settings.dlq_name)["QueueUrl"]
    queue_url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    for _ in range(12):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=_batch_body(retries=3))
    sqs.send_message(QueueUrl=dlq_url, MessageBody="not a celery message")

    assert cli.main(["--aws", "dlq", "list", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count(STORE_REPORTS) == 12 and "(not a Celery message)" in out
    assert "secret text" not in out and "req-1" not in out  # ids and counts only
    letters = dlq.list_letters(sqs, dlq_url, limit=5)
    assert len(letters) == 5
    assert all(not m.task or m.retries in (0, 3) for m in letters)

    assert cli.main(["--aws", "dlq", "redrive"]) == 0
    assert "moved 13 message(s)" in capsys.readouterr().out
    attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    moved = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    decoded = [dlq.decode(m["Body"]) for m in moved]
    assert all(d is None or d[0]["retries"] == 0 for d in decoded)
    assert any(d is None for d in decoded) or len(decoded) == 10


def test_status_prints_a_table_and_json(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    provision(Settings())
    cli.main(["--aws", "status"])
    table = capsys.readouterr().out
    assert "queue (messages)" in table and "0 visible, 0 in flight, 0 delayed" in table
    assert "never" in table and "workers" in table
    assert cli.main(["--aws", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dlq"]["visible"] == 0 and data["unavailable"] == []


def test_seed_data_is_reproducible_valid_and_inside_the_area() -> None:
    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    area = seed.parse_area("london")
    first = seed.plan(200, area, 7, now)
    assert first == seed.plan(200, area, 7, now)
    assert first != seed.plan(200, area, 8, now)
    keys = {key for key, _ in first}
    assert len(keys) == 200 and "seed-7-0" in keys
    west, south, east, north = area
    for _, body in first:
        parse_submission(body, now=now)  # the API would accept every one
        assert west <= body["lon"] <= east and south <= body["lat"] <= north
    categories = {body["category"] for _, body in first}
    assert {"poor_lighting", "harassment"} <= categories
    assert seed.parse_area("1,2,3,4") == (1.0, 2.0, 3.0, 4.0)
    for bad in ("atlantis", "3,2,1,4", "a,b,c,d"):
        with pytest.raises(ValueError, match="--area"):
            seed.parse_area(bad)


def test_dlq_decode_reads_our_messages_only() -> None:
    headers, args = dlq.decode(_batch_body(2)) or ({}, [])
    assert headers["task"] == STORE_REPORTS and headers["retries"] == 2
    assert args[0][0]["request_id"] == "req-1"
    assert dlq.decode("garbage") is None
    assert dlq.decode(base64.b64encode(b"{}").decode()) is None


def test_remove_by_selection_shows_what_matches_and_removes_only_with_yes(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings()
    provision(settings)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    reports = ReportRepository(ddb, settings.reports_table)
    now = datetime.now(UTC)
    spam = [
        Report(str(uuid.uuid4()), 51.5 + i * 1e-4, -0.12, "other", "", now, now) for i in range(4)
    ]
    earlier = Report(str(uuid.uuid4()), 51.5, -0.12, "other", "", now, now - timedelta(days=1))
    elsewhere = Report(str(uuid.uuid4()), 48.85, 2.35, "other", "", now, now)
    reports.store_many([(r, "15/1/2") for r in [*spam, earlier]] + [(elsewhere, "15/3/4")])
    select = ["--aws", "remove", "--bbox=-0.13,51.49,-0.11,51.51", "--received-from", "1h"]

    for argv, error in [
        ([], "give report ids, or select"),
        ([spam[0].id, "--category", "other"], "not both"),
        (["--bbox", "1,2"], "--bbox: minLon,minLat,maxLon,maxLat"),
        (["--bbox", "1,2,0,3"], "west < east"),
        (["--category", "spam"], "--category: one of"),
        (["--received-from", "yesterday"], "--received-from: an ISO 8601 time or an age"),
    ]:
        assert cli.main(["--aws", "remove", *argv]) == 1, argv
        assert error in capsys.readouterr().err, argv

    assert cli.main(select) == 0  # shown, not removed
    out = capsys.readouterr().out
    assert "4 report(s) match (4 other), received from " in out and "nothing removed" in out
    assert len(reports.ids()) == 6

    assert cli.main([*select, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed 4 report(s) from 1 partition(s); their grids are being recomputed" in out
    assert sorted(reports.ids()) == sorted([earlier.id, elsewhere.id])
    assert GridRepository(ddb, settings.grids_table).has_dirty()
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    sent = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert dlq.decode(sent[0]["Body"])[0]["task"] == RECOMPUTE  # type: ignore[index]

    assert cli.main(select) == 0
    assert "no stored report matches" in capsys.readouterr().out
    assert cli.main(["--aws", "remove", "--received-from", "2026-12-02T10:00"]) == 0  # UTC
