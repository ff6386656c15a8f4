"""export/import: the file holds no pseudonym, address or description; a wrong line is named and
stops the import before anything is sent; an import restores ids, times and privacy units
through the worker's own store path, and a second import stores nothing twice."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.report import Report
from shared.ops import cli, dlq
from shared.store.grids import GridRepository
from shared.store.provision import provision
from shared.store.reports import ReportRepository
from workers import ingest

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for var in list(os.environ):
        if var.startswith("SAFETYHEATMAP_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        settings = Settings()
        provision(settings)
        yield settings


def _reports() -> list[Report]:
    out = []
    for i in range(7):
        out.append(
            Report(
                id=str(uuid.uuid4()) if i % 2 else str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))),
                lat=51.5 + i * 1e-3,
                lon=-0.12,
                category="harassment" if i % 3 else "other",
                description="private words",
                occurred_at=NOW - timedelta(hours=i + 1),
                received_at=NOW - timedelta(hours=i),
                submitter="ab" * 16 if i < 4 else "",  # three of the first four are not units
            )
        )
    return out


def _repos(settings: Settings) -> tuple[ReportRepository, GridRepository]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return ReportRepository(ddb, settings.reports_table), GridRepository(ddb, settings.grids_table)


def _ingest(settings: Settings, reports: list[Report]) -> None:
    store, grids = _repos(settings)
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    ingest.store_many(reports, store, grids, pyramid, NOW, settings.privacy_distinct_submitters)


def _stored(settings: Settings) -> dict[str, tuple[Any, ...]]:
    store, _ = _repos(settings)
    return {
        row.id: (row.partition, row.lat, row.lon, row.category, row.occurred_at, row.received_at, u)
        for row, u in store.backup_rows()
    }


def _drain_and_store(settings: Settings) -> int:
    """What the worker does with the import's messages: decode, store by id."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    messages = 0
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            decoded = dlq.decode(message["Body"])
            assert decoded is not None
            headers, args = decoded
            assert headers["task"] == "safetyheatmap.store_reports"
            _ingest(settings, [Report.from_message(item["report"]) for item in args[0]])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages += 1
    return messages


def _wipe(settings: Settings) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for table in (settings.reports_table, settings.grids_table):
        ddb.delete_table(TableName=table)
    provision(settings)


def test_export_writes_no_pseudonym_and_a_private_file(aws: Settings, tmp_path: Path) -> None:
    _ingest(aws, _reports())
    out = tmp_path / "backup.ndjson"
    assert cli.main(["--aws", "export", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7
    assert {tuple(sorted(line)) for line in lines} == {
        ("category", "id", "lat", "lon", "occurred_at", "received_at", "unit")
    }
    assert "ab" * 16 not in out.read_text() and "private" not in out.read_text()
    assert sum(not line["unit"] for line in lines) == 3


def test_round_trip_keeps_ids_times_and_units_and_twice_is_once(
    aws: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ingest(aws, _reports())
    before = _stored(aws)
    out = tmp_path / "backup.ndjson"
    assert cli.main(["--aws", "export", "--out", str(out)]) == 0
    _wipe(aws)
    assert _stored(aws) == {}
    for _ in range(2):
        assert cli.main(["--aws", "import", str(out)]) == 0
        assert "queued 7 report(s)" in capsys.readouterr().out
        assert _drain_and_store(aws) == 1
        assert _stored(aws) == before  # received_at kept, not the import's time
        assert sorted(_repos(aws)[0].ids()) == sorted(before)  # no duplicates
    assert _repos(aws)[1].has_dirty()  # the grids follow


BAD_LINES = [
    ("not json", "line 2: not JSON"),
    ('{"id": "x"}', "line 2: occurred_at: is required"),
    ("[1]", "line 2: must be a JSON object"),
    ('{"id": "1", "where": 1}', "line 2: where: unknown field"),
]
BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"lat": 91}, "line 2: lat: must be between -90 and 90"),
    ({"category": "spam"}, "line 2: category: must be one of"),
    ({"received_at": "2026-01-01T00:00:00"}, "line 2: received_at: must include a UTC"),
    ({"id": "nope"}, "line 2: id: must be a report id"),
    ({"unit": "yes"}, "line 2: unit: must be true or false"),
]


def test_a_wrong_line_or_field_is_named_and_nothing_is_sent(
    aws: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ingest(aws, _reports()[:2])
    out = tmp_path / "backup.ndjson"
    assert cli.main(["--aws", "export", "--out", str(out)]) == 0
    first, second = out.read_text().splitlines()
    wrong = list(BAD_LINES)
    wrong += [(json.dumps({**json.loads(second), **change}), e) for change, e in BAD_FIELDS]
    for line, error in wrong:
        out.write_text(f"{first}\n{line}\n{second}\n")
        assert cli.main(["--aws", "import", str(out)]) == 1, line
        err = capsys.readouterr().err
        assert error in err and "nothing imported" in err, (line, err)
    assert _drain_and_store(aws) == 0


def test_every_wrong_line_is_named_up_to_a_limit(
    aws: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "backup.ndjson"
    out.write_text("x\n" * 25)
    assert cli.main(["--aws", "import", str(out)]) == 1
    err = capsys.readouterr().err
    assert "line 20: not JSON" in err and "line 21" not in err and "and 5 more" in err


@pytest.mark.parametrize("argv", [["export"], ["import"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([*argv, "--help"])
    assert exit_.value.code == 0
    assert "usage: safetyheatmap" in capsys.readouterr().out
