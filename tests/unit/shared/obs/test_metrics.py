"""EMF lines, the request log and the freshness bookkeeping behind status (log lines:
test_logs.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import falcon
import pytest
from falcon import testing
from moto import mock_aws

from shared.config.settings import Settings
from shared.obs.metrics import MAX_VALUES, NAMESPACE, Metrics
from shared.obs.status import FreshnessLog, StatusReader, bucket_of, bucket_value, quantile
from shared.store.provision import provision
from web import errors
from web.middleware import RequestId, RequestLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_counts_sum_and_observations_keep_every_value_in_one_emf_line() -> None:
    lines: list[dict[str, Any]] = []
    stats = Metrics(lines.append, interval=60, clock=Clock())
    stats.count("ReportsAccepted")
    stats.count("ReportsAccepted", 2)
    stats.observe("EnqueueLatency", 3.5)
    stats.observe("EnqueueLatency", 7.25)
    assert stats.flush() == 1
    (doc,) = lines
    assert doc["ReportsAccepted"] == 3
    assert doc["EnqueueLatency"] == [3.5, 7.25]
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE == "SafetyHeatmap"
    assert directive["Dimensions"] == [[]]  # what the TaskFailed alarm reads: no dimensions
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "ReportsAccepted": "Count",
        "EnqueueLatency": "Milliseconds",
    }
    assert doc["_aws"]["Timestamp"] == 1_800_000_000_000
    assert stats.flush() == 0  # nothing new


def test_dimensions_publish_the_total_and_each_value() -> None:
    lines: list[dict[str, Any]] = []
    stats = Metrics(lines.append, interval=60, clock=Clock())
    stats.count("ReportsRejected", Reason="validation_failed")
    stats.count("ReportsRejected", Reason="validation_failed")
    stats.count("ReportsRejected", Reason="malformed_json")
    stats.flush()
    by_reason = {doc["Reason"]: doc for doc in lines}
    assert by_reason["validation_failed"]["ReportsRejected"] == 2
    assert by_reason["malformed_json"]["ReportsRejected"] == 1
    for doc in lines:
        assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[], ["Reason"]]


def test_value_arrays_split_at_the_emf_limit_and_time_triggers_a_flush() -> None:
    lines: list[dict[str, Any]] = []
    clock = Clock()
    stats = Metrics(lines.append, interval=10, clock=clock)
    for i in range(MAX_VALUES + 5):
        stats.observe("TaskDuration", i, Task="t")
    assert len(lines) == 1 and len(lines[0]["TaskDuration"]) == MAX_VALUES  # flushed when full
    clock.now += 11
    stats.count("TilesRecomputed", 4)  # the interval has passed: this call flushes
    assert len(lines) == 3
    assert sorted(len(d.get("TaskDuration", [])) for d in lines) == [0, 5, MAX_VALUES]


def test_many_observations_at_once_are_each_kept_and_split_at_the_limit() -> None:
    lines: list[dict[str, Any]] = []
    stats = Metrics(lines.append, interval=1e9)
    stats.observe("EnqueueLatency", 1.0)
    stats.observe_many("EnqueueLatency", [2.0004, 3.0] * MAX_VALUES)  # full: flushed at once
    assert [len(d["EnqueueLatency"]) for d in lines] == [MAX_VALUES, MAX_VALUES, 1]
    values = [v for d in lines for v in d["EnqueueLatency"]]
    assert values[:3] == [1.0, 2.0, 3.0] and len(values) == 2 * MAX_VALUES + 1


# --- the request log ---------------------------------------------------------------------------
class Add:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_param("bad"):
            raise errors.BadRequest("no")
        resp.status = falcon.HTTP_202


def test_request_log_writes_one_line_per_request_and_counts_outcomes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines: list[dict[str, Any]] = []
    stats = Metrics(lines.append, interval=1e9)
    app = falcon.App(middleware=[RequestLog(stats), RequestId()])
    errors.install(app, 5)
    app.add_route("/api/safetyheatmap/report/add", Add())
    client = testing.TestClient(app)
    with caplog.at_level(logging.INFO, logger="safetyheatmap.access"):
        client.simulate_post("/api/safetyheatmap/report/add", headers={"X-Request-Id": "r-1"})
        client.simulate_post("/api/safetyheatmap/report/add", params={"bad": "1"})
        client.simulate_get("/nowhere")
    records = [r for r in caplog.records if r.name == "safetyheatmap.access"]
    assert len(records) == 3
    first = vars(records[0])
    assert (first["method"], first["path"], first["status"], first["request_id"]) == (
        "POST",
        "/api/safetyheatmap/report/add",
        202,
        "r-1",
    )
    assert first["duration_ms"] >= 0
    assert vars(records[2])["status"] == 404
    stats.flush()
    totals = {(d.get("Reason"), k): v for d in lines for k, v in d.items() if k.startswith("Rep")}
    assert totals == {(None, "ReportsAccepted"): 1, ("bad_request", "ReportsRejected"): 1}


# --- freshness bookkeeping ---------------------------------------------------------------------
def test_quantiles_come_from_log_buckets_within_their_width() -> None:
    lags = [100.0] * 50 + [1000.0] * 45 + [5000.0] * 5
    histogram: dict[int, int] = {}
    for lag in lags:
        histogram[bucket_of(lag)] = histogram.get(bucket_of(lag), 0) + 1
    assert abs((quantile(histogram, 0.5) or 0) - 100) / 100 < 0.2
    assert abs((quantile(histogram, 0.95) or 0) - 1000) / 1000 < 0.2
    assert quantile({}, 0.5) is None
    assert bucket_of(0) == 0 and bucket_value(bucket_of(10**12)) > 600_000


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        provision(Settings())
        yield boto3.client("dynamodb", region_name="us-east-1")


def test_freshness_lags_are_recorded_and_summarised(ddb: Any) -> None:
    table = Settings().grids_table
    log = FreshnessLog(ddb, table)
    acked = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    tick = int(acked.timestamp() * 10)
    visible = acked.timestamp() + 2.0
    lags = log.record({tick: 2, tick + 10: 1}, visible)
    assert sorted(round(lag) for lag, _ in lags) == [950, 1950]
    log.record({tick: 1}, visible + 120)  # two minutes later
    summary = log.summary(visible + 120, minutes=15)
    assert summary["reports"] == 4
    assert 1600 < summary["p50_ms"] < 2400
    assert summary["p95_ms"] > 100_000
    assert log.summary(visible + 3 * 3600, minutes=15)["reports"] == 0  # old slots ignored


def test_status_reads_depths_last_computation_and_freshness(ddb: Any) -> None:
    settings = Settings()
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    ddb.put_item(
        TableName=settings.grids_table,
        Item={
            "pk": {"S": "meta"},
            "sk": {"S": "last_computed_at"},
            "value": {"S": "2026-11-27T12:00:00.000+00:00"},
        },
    )
    clock = Clock()
    clock.now = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC).timestamp()
    status = StatusReader(sqs, ddb, settings, clock=clock, cache_ttl=5)()
    assert status["queue"] == {"visible": 1, "in_flight": 0, "delayed": 0}
    assert status["dlq"] == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert status["last_computed_age_s"] == 30.0
    assert status["freshness"]["reports"] == 0 and status["freshness"]["p95_ms"] is None
    assert status["unavailable"] == []
