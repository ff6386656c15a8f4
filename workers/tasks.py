"""Thin tasks: decode the message, call shared code, retry explicitly on transient errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from shared import ingest
from shared.report import Report, ValidationError
from shared.settings import Settings
from shared.storage import utc_now_iso
from shared.taskmsg import RECOMPUTE, ROLL_WINDOWS, STORE_REPORT
from workers.services import Services

log = logging.getLogger("safetyheatmap.tasks")
TRANSIENT = (BotoCoreError, ClientError, SoftTimeLimitExceeded)


def register_tasks(app: Celery, settings: Settings, services: Callable[[], Services]) -> None:
    common: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "soft_time_limit": settings.task_soft_time_limit,
        "time_limit": settings.task_time_limit,
        "max_retries": settings.task_max_retries,
        "ignore_result": True,
    }

    def backoff(retries: int) -> float:
        # Full jitter, capped well below the visibility timeout (settings validate that).
        return random.uniform(0.5, min(settings.retry_backoff_max, 2.0 ** (retries + 1)))  # noqa: S311

    def retry_or_reject(task: Task, exc: Exception) -> None:
        if task.request.retries >= settings.task_max_retries:
            log.error(
                "giving up; the message returns to SQS and reaches the DLQ",
                extra={"task": task.name, "error": type(exc).__name__},
            )
            raise Reject(exc, requeue=False) from exc
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from exc

    def send_recompute() -> None:
        recompute.apply_async(countdown=settings.recompute_delay)

    @app.task(name=STORE_REPORT, **common)
    def store_report(self: Task, payload: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            report = Report.from_message(payload)
        except (ValidationError, TypeError, ValueError) as exc:
            log.error("rejected a malformed message", extra={"error": str(exc)})
            raise Reject(exc, requeue=False) from exc
        s = services()
        try:
            result = ingest.store(report, s.reports, s.grids, s.pyramid, datetime.now(UTC))
            ingest.schedule_recompute(
                s.grids, send_recompute, owner=self.request.id or "", ttl_s=60.0
            )
        except TRANSIENT as exc:
            retry_or_reject(self, exc)
        log.info(
            "report stored" if result.stored else "duplicate report ignored",
            extra={
                "task": STORE_REPORT,
                "report_id": report.id,
                "request_id": (self.request.headers or {}).get("request_id")
                if isinstance(self.request.headers, dict)
                else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": "stored" if result.stored else "duplicate",
            },
        )

    @app.task(name=RECOMPUTE, **{**common, "max_retries": 120})
    def recompute(self: Task) -> None:
        started = time.perf_counter()
        s = services()
        try:
            result = ingest.recompute(
                s.grids,
                s.recomputer,
                owner=self.request.id or "",
                lease_s=settings.task_time_limit + 5,
                now=datetime.now(UTC),
                computed_at=utc_now_iso(),
            )
        except TRANSIENT as exc:
            retry_or_reject(self, exc)
        if not result.ran:
            # Another run holds the lease; ours must still happen after it.
            raise self.retry(countdown=1.0)
        if result.more:
            send_recompute()
        log.info(
            "grids recomputed",
            extra={
                "task": RECOMPUTE,
                "markers": result.markers,
                "tiles": result.tiles,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": "ok",
            },
        )

    @app.task(name=ROLL_WINDOWS, **common)
    def roll_windows(self: Task) -> None:
        s = services()
        try:
            marked = ingest.roll_windows(s.reports, s.grids, datetime.now(UTC))
            if marked or s.grids.dirty_markers(limit=1):
                ingest.schedule_recompute(s.grids, send_recompute, self.request.id or "", 60.0)
        except TRANSIENT as exc:
            retry_or_reject(self, exc)
        log.info("windows rolled", extra={"task": ROLL_WINDOWS, "marked": marked})
