"""``status``: queue and DLQ depth, last grid computation, freshness lag, workers."""

from __future__ import annotations

import argparse
import json

from shared.obs.status import StatusReader
from shared.ops.target import Target


def worker_count(target: Target) -> str:
    if target.mode == "local":
        state = target.state()
        running = state.get("workers")
        if running is None:
            running = sum(1 for name in state.get("processes", {}) if name.startswith("worker"))
        return f"{running} local worker process(es)"
    s = target.settings
    try:
        found = target.client("ecs").describe_services(
            cluster=s.ecs_cluster, services=[s.ecs_worker_service]
        )["services"]
    except Exception as exc:  # an operator without ECS rights still gets the rest
        return f"unknown ({type(exc).__name__})"
    if not found:
        return "unknown (no ECS service)"
    return f"{found[0]['runningCount']} running, {found[0]['desiredCount']} desired (ECS)"


def cmd_status(args: argparse.Namespace, target: Target) -> int:
    reader = StatusReader(target.client("sqs"), target.client("dynamodb"), target.settings)
    status = reader.collect()
    status["workers"] = worker_count(target)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    q, d, f = status.get("queue"), status.get("dlq"), status.get("freshness")
    age = status.get("last_computed_age_s")
    rows = [
        ("where", f"{target.mode}  {target.api_url}"),
        ("at", status["at"]),
        (
            "queue (messages)",
            f"{q['visible']} visible, {q['in_flight']} in flight, {q['delayed']} delayed"
            if q
            else "unavailable",
        ),
        (
            "dead-letter queue",
            f"{d['visible'] + d['in_flight']} message(s)" if d else "unavailable",
        ),
        (
            "last grid computation",
            f"{status['last_computed_at']} ({age:.1f} s ago)" if age is not None else "never",
        ),
        ("dirty partitions", _count(status.get("dirty_partitions"))),
        (
            f"freshness, last {f['window_minutes']} min" if f else "freshness",
            f"p50 {_seconds(f['p50_ms'])}, p95 {_seconds(f['p95_ms'])} over {f['reports']} reports"
            if f
            else "unavailable",
        ),
        ("workers", status["workers"]),
    ]
    print(table(rows))
    return 0 if not status["unavailable"] else 1


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _count(value: int | None, cap: int = 100) -> str:
    return "-" if value is None else f"{value}+" if value >= cap else str(value)


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"
