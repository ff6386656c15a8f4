"""Monthly AWS bill of a deployment: list prices, the load, the configuration, and the formulas.

Why code and not a hand-made table: docs/DEPLOY.md's cost table is generated from this module
(`make cost-docs`; a test fails when it is stale), so its figures, its formulas and the
deployment's configuration cannot drift apart. An operator redoes the estimate for their own load
and settings with `make cost COST_ARGS="--reports-per-day 2000 --web-spot"`.

Every figure is an estimate from list prices; counts that the templates fix (alarm metrics) are
checked against the synthesized stack by infra/tests/test_cost.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .config import Config

HOURS = 730  # one month
DAYS = HOURS / 24
MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices in USD, Linux/x86, as published in 2025 (docs/DEPLOY.md §7)."""

    as_of: str = "2026-11-27"
    fargate_vcpu_hour: float = 0.04048
    fargate_gb_hour: float = 0.004445
    spot_fraction: float = 0.30  # Fargate Spot varies; assumed 30 % of on-demand
    ipv4_hour: float = 0.005
    api_per_million: float = 1.00  # HTTP API; the VPC link is free
    ddb_write_unit_million: float = 0.625
    ddb_read_unit_million: float = 0.125
    ddb_gb_month: float = 0.25
    ddb_pitr_gb_month: float = 0.20
    sqs_per_million: float = 0.40
    sqs_free_million: float = 1.0
    alarm_metric: float = 0.10
    custom_metric: float = 0.30
    logs_ingested_gb: float = 0.50
    logs_stored_gb_month: float = 0.03
    hosted_zone: float = 0.50  # the Cloud Map private namespace
    cloud_map_instance: float = 0.10
    ecr_gb_month: float = 0.10
    secret_month: float = 0.40  # Secrets Manager, per secret (its API calls: at task start only)
    lambda_per_million: float = 0.20
    lambda_gb_second: float = 0.0000133334
    free_custom_metrics: int = 10  # CloudWatch's always-free allowance, per account
    free_alarm_metrics: int = 10
    free_logs_gb: float = 5.0


@dataclass(frozen=True)
class Load:
    """What the deployment is asked to do in a month; the defaults are docs/DEPLOY.md's."""

    reports_per_day: float = 0
    api_requests_per_report: float = 20  # the page, config and heatmap reads around a report
    heatmap_reads_per_report: float = 10  # GET heatmap answers that miss the web's cache
    # Hours a day a worker runs. Unset: 0 with no reports, else 20 (it sleeps only at night).
    worker_hours_per_day: float | None = None
    # Stored reports and tiles, GB. Unset: ~5 KB a report received this month, at least 0.2.
    storage_gb: float | None = None


# Measured per report by bench/ingest.py with 10,000 reports stored (docs/BENCHMARKS.md):
# store, recompute and background pass, as DynamoDB on-demand bills them (strongly consistent
# tile reads at whole units; the privacy rule's reads of every category's counts).
WRITE_UNITS_PER_REPORT = 63.2
READ_UNITS_PER_REPORT = 171.0
READ_UNITS_PER_HEATMAP_READ = 4.0 + 0.5  # the tiles, and the look at `tiles-written`
SQS_REQUESTS_PER_REPORT = 7  # send, receive, delete, the follow-up recompute's three
SQS_POLLS_PER_WORKER_HOUR = 360  # one long poll per 10 s
SCALER_TICKS = HOURS * 60  # the queue scaler, every minute
SCALER_SECONDS, SCALER_GB = 0.5, 0.128
ROLL_GATE_TICKS = HOURS
ACCESS_LOG_BYTES = 400  # one JSON line per API request
APP_LOG_BYTES_PER_REPORT = 1_700
IDLE_LOG_GB = 0.1  # the scaler's line a minute, the roll gate's an hour, the web's start-up
ECR_GB = 0.5
# Counted from the synthesized stack (infra/tests/test_cost.py): metrics that alarms read (a
# math alarm counts each of its metrics), and the scaler's EMF metrics.
ALARM_METRICS = 13
SCALER_METRICS = 4
APP_METRICS = 5  # the web's and the workers' EMF metrics, only in hours they are emitted
# Container Insights' metrics while only the web runs (cluster, web service, web task family),
# and the ones a running worker adds (its service and task family).
INSIGHTS_WEB_METRICS = 38
INSIGHTS_WORKER_METRICS = 25


def fargate_hour(cpu_units: int, memory_mib: int, prices: Prices, *, spot: bool) -> float:
    rate = cpu_units / 1024 * prices.fargate_vcpu_hour + memory_mib / 1024 * prices.fargate_gb_hour
    return rate * (prices.spot_fraction if spot else 1.0)


def monthly(config: Config, load: Load, prices: Prices = Prices()) -> dict[str, float]:
    """Each line of the bill in USD a month, in the order of docs/DEPLOY.md's table."""
    reports = load.reports_per_day * DAYS
    worker_hours = (
        load.worker_hours_per_day
        if load.worker_hours_per_day is not None
        else (20.0 if load.reports_per_day else 0.0)
    ) * DAYS
    web_hours = HOURS * config.web_min_tasks
    requests = reports * load.api_requests_per_report
    heatmap_reads = reports * load.heatmap_reads_per_report
    storage_gb = load.storage_gb if load.storage_gb is not None else max(0.2, reports * 5e-6)

    write_units = reports * WRITE_UNITS_PER_REPORT
    read_units = reports * READ_UNITS_PER_REPORT + heatmap_reads * READ_UNITS_PER_HEATMAP_READ
    sqs_requests = (
        reports * SQS_REQUESTS_PER_REPORT + worker_hours * SQS_POLLS_PER_WORKER_HOUR + SCALER_TICKS
    )
    log_gb = IDLE_LOG_GB + (requests * ACCESS_LOG_BYTES + reports * APP_LOG_BYTES_PER_REPORT) / 1e9
    custom_metrics = SCALER_METRICS + (APP_METRICS if reports else 0)
    insights = 0.0
    if config.container_insights:
        insights = INSIGHTS_WEB_METRICS + INSIGHTS_WORKER_METRICS * worker_hours / HOURS
    invocations = SCALER_TICKS + ROLL_GATE_TICKS

    lines = {
        "Fargate web": web_hours
        * fargate_hour(config.web_cpu, config.web_memory, prices, spot=config.web_spot),
        "Fargate Spot worker": worker_hours
        * fargate_hour(config.worker_cpu, config.worker_memory, prices, spot=True),
        "Public IPv4 (web and worker task-hours)": (web_hours + worker_hours) * prices.ipv4_hour,
        "API Gateway HTTP API": requests / MILLION * prices.api_per_million,
        "DynamoDB (requests, storage, PITR)": write_units / MILLION * prices.ddb_write_unit_million
        + read_units / MILLION * prices.ddb_read_unit_million
        + storage_gb * (prices.ddb_gb_month + prices.ddb_pitr_gb_month),
        "SQS": max(0.0, sqs_requests / MILLION - prices.sqs_free_million) * prices.sqs_per_million,
        "CloudWatch alarms": ALARM_METRICS * prices.alarm_metric,
        "CloudWatch custom metrics (scaler, app)": custom_metrics * prices.custom_metric,
        "Container Insights": insights * prices.custom_metric,
        "CloudWatch Logs": log_gb * (prices.logs_ingested_gb + prices.logs_stored_gb_month),
        "Route 53 zone + Cloud Map instance": prices.hosted_zone
        + config.web_min_tasks * prices.cloud_map_instance,
        "ECR storage": ECR_GB * prices.ecr_gb_month,
        "Secrets Manager (the web's client hash key)": prices.secret_month,
        "Lambda + EventBridge Scheduler": invocations / MILLION * prices.lambda_per_million
        + SCALER_TICKS * SCALER_SECONDS * SCALER_GB * prices.lambda_gb_second,
        "always-free CloudWatch allowance": -(
            min(custom_metrics + insights, prices.free_custom_metrics) * prices.custom_metric
            + min(ALARM_METRICS, prices.free_alarm_metrics) * prices.alarm_metric
            + min(log_gb, prices.free_logs_gb) * prices.logs_ingested_gb
        ),
    }
    return lines


# The columns of docs/DEPLOY.md's table: title, configuration changes, load.
COLUMNS: list[tuple[str, dict[str, object], Load]] = [
    ("idle", {}, Load()),
    (
        "idle, lean (`webSpot=true`, `containerInsights=false`)",
        {"web_spot": True, "container_insights": False},
        Load(),
    ),
    ("10k reports/day", {}, Load(reports_per_day=10_000)),
]


def table(columns: list[tuple[str, Config, Load]], prices: Prices = Prices()) -> str:
    bills = [monthly(config, load, prices) for _, config, load in columns]
    rows = [
        "| monthly, USD | " + " | ".join(title for title, _, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for line in bills[0]:
        rows.append(f"| {line} | " + " | ".join(f"{b[line]:.2f}" for b in bills) + " |")
    totals = " | ".join(f"**{sum(b.values()):.2f}**" for b in bills)
    rows.append(f"| **total** | {totals} |")
    return "\n".join(rows) + "\n"


def docs_table(config: Config | None = None) -> str:
    base = config or Config()
    return table([(title, replace(base, **changes), load) for title, changes, load in COLUMNS])


DEPLOY_MD = Path(__file__).resolve().parents[2] / "docs" / "DEPLOY.md"
_BLOCK = re.compile(r"(<!-- cost:start -->\n).*?(<!-- cost:end -->)", re.S)


def render(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + docs_table() + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make cost COST_ARGS=...",
        description="Estimate the monthly AWS bill (list prices of docs/DEPLOY.md section 7).",
    )
    parser.add_argument("--reports-per-day", type=float, default=0)
    parser.add_argument("--requests-per-report", type=float, default=Load.api_requests_per_report)
    parser.add_argument("--worker-hours-per-day", type=float, default=None)
    parser.add_argument("--storage-gb", type=float, default=None)
    parser.add_argument("--web-spot", action="store_true", help="the web on FARGATE_SPOT")
    parser.add_argument("--no-container-insights", action="store_true")
    parser.add_argument("--web-tasks", type=int, default=Config.web_min_tasks)
    parser.add_argument("--write-docs", action="store_true", help="regenerate DEPLOY.md's table")
    args = parser.parse_args(argv)
    if args.write_docs:
        DEPLOY_MD.write_text(render(DEPLOY_MD.read_text()))
        return 0
    config = Config(
        web_spot=args.web_spot,
        container_insights=not args.no_container_insights,
        web_min_tasks=args.web_tasks,
    )
    load = Load(
        reports_per_day=args.reports_per_day,
        api_requests_per_report=args.requests_per_report,
        worker_hours_per_day=args.worker_hours_per_day,
        storage_gb=args.storage_gb,
    )
    title = f"{args.reports_per_day:g} reports/day"
    print(table([(title, config, load)]), end="")
    print(f"\nList prices as assumed on {Prices.as_of}; see docs/DEPLOY.md section 7.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
