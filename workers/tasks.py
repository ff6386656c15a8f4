"""Thin tasks: decode the message, call shared code, retry explicitly on transient errors.

``store_reports`` takes the web's batches (a list of ``{"report", "request_id"}``);
``store_report`` (one report) stays for messages queued before batching and for other senders.
A batch is stored by ``ingest.store_many`` (idempotent by id: one conditional guard write per
report, the rest in batch writes; dirty marks merged per partition and written once after the
reports), and one recompute is scheduled per batch. Each task writes one log line (with the
request ids it carries, its duration and outcome) and EMF metrics (``shared.obs.metrics``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from celery import Celery, Task, signals
from celery.exceptions import Reject, SoftTimeLimitExceeded

from shared.config import gctune
from shared.config.settings import Settings
from shared.model.report import Report, ValidationError
from shared.model.taskmsg import RECOMPUTE, ROLL_WINDOWS, STORE_REPORT, STORE_REPORTS
from shared.obs.metrics import metrics
from shared.store.keys import utc_now_iso
from workers import ingest, recompute, summary
from workers.background import BACKGROUND_SCHEDULED
from workers.services import Services

"""The web's batch task (web/enqueue.py sends this name; a unit test checks both agree)."""

log = logging.getLogger("safetyheatmap.tasks")
TRANSIENT = (BotoCoreError, ClientError, SoftTimeLimitExceeded)
RECEIVE_COUNT = "sqs_receive_count"


def remember_receive_count(request: Any = None, **_: Any) -> None:
    """``task_received`` handler: the consumer sees the SQS message, a task only its headers.
    Copy the receive count over so a task that gives up can tell whether the DLQ comes next."""
    try:
        attrs = request.message.delivery_info["sqs_message"]["Attributes"]
        request.request_dict[RECEIVE_COUNT] = int(attrs["ApproximateReceiveCount"])
    except (AttributeError, KeyError, TypeError, ValueError):
        pass


class Runner:
    """What the tasks do, apart from Celery's decorators."""

    def __init__(self, settings: Settings, services: Callable[[], Services]) -> None:
        self.settings = settings
        self.services = services
        self.send_recompute: Callable[[], None] = lambda: None
        self.send_recompute_in: Callable[[float], None] = lambda _delay: None
        self.send_recompute_now: Callable[[], None] = lambda: None

    def bookkeeping(self, step: Callable[[], Any], default: Any = None) -> Any:
        """Freshness bookkeeping never fails a task: it is measured, not stored data."""
        try:
            return step()
        except TRANSIENT as exc:
            log.warning("freshness bookkeeping failed", extra={"error": type(exc).__name__})
            return default

    # --- failures ---------------------------------------------------------------------------
    def backoff(self, retries: int) -> float:
        # Full jitter, capped well below the visibility timeout (settings validate that).
        cap = min(self.settings.retry_backoff_max, 2.0 ** (retries + 1))
        return random.uniform(0.5, cap)  # noqa: S311

    def give_up(self, task: Task, exc: Exception, what: str) -> Reject:
        receives = int(getattr(task.request, RECEIVE_COUNT, 0) or 0)
        to_dlq = receives >= self.settings.max_receives
        stats = metrics()
        stats.count("TaskFailed", Task=task.name)
        if to_dlq:
            stats.count("DlqMoves", Task=task.name)
        log.error(
            what,
            extra={
                "task": task.name,
                "error": type(exc).__name__,
                "receive": receives,
                "max_receives": self.settings.max_receives,
                "next": "dlq" if to_dlq else "redelivery after the visibility timeout",
            },
        )
        return Reject(exc, requeue=False)

    def retry_or_reject(self, task: Task, exc: Exception) -> None:
        if task.request.retries >= self.settings.task_max_retries:
            what = "giving up; the message returns to SQS and reaches the DLQ"
            raise self.give_up(task, exc, what) from exc
        metrics().count("TaskFailed", Task=task.name)
        log.warning(
            "task failed; retrying",
            extra={"task": task.name, "error": type(exc).__name__, "retry": task.request.retries},
        )
        raise task.retry(exc=exc, countdown=self.backoff(task.request.retries)) from exc

    # --- tasks ------------------------------------------------------------------------------
    def store_batch(self, task: Task, items: Any) -> None:
        """Store every valid report of a batch; then, if an item was malformed (forged: the web
        validates), reject the message so that it reaches the DLQ for inspection. The valid
        reports are stored by then, and storing them again on redelivery or redrive is a no-op."""
        started = time.perf_counter()
        if not isinstance(items, list) or not items:
            raise self.give_up(task, ValueError("no reports"), "rejected a malformed message")
        reports: list[Report] = []
        for item in items:
            try:
                reports.append(Report.from_message(item["report"]))
            except (ValidationError, TypeError, ValueError, KeyError) as exc:
                log.error("malformed report", extra={"task": task.name, "error": str(exc)})
        malformed = len(items) - len(reports)
        s = self.services()
        now = datetime.now(UTC)
        try:
            results = ingest.store_many(
                reports,
                s.reports,
                s.grids,
                s.pyramid,
                now,
                self.settings.privacy_distinct_submitters,
            )
            if reports:
                ingest.schedule_recompute(
                    s.grids, self.send_recompute, owner=task.request.id or "", ttl_s=60.0
                )
        except TRANSIENT as exc:
            self.retry_or_reject(task, exc)
        stored = sum(1 for res in results if res.stored)
        duration = (time.perf_counter() - started) * 1000
        oldest = min((r.received_at for r in reports), default=None)
        stats = metrics()
        stats.observe("TaskDuration", duration, Task=task.name)
        stats.count("ReportsStored", stored)
        stats.count("ReportsDuplicate", len(reports) - stored)
        log.info(
            "reports stored",
            extra={
                "task": task.name,
                "reports": len(reports),
                "stored": stored,
                "duplicates": len(reports) - stored,
                "malformed": malformed,
                "report_ids": [r.id for r in reports],
                "request_ids": [i.get("request_id") for i in items if isinstance(i, dict)],
                "queued_ms": round((now - oldest).total_seconds() * 1000) if oldest else None,
                "duration_ms": round(duration, 1),
                "outcome": "stored" if not malformed else "malformed",
            },
        )
        if malformed:
            stats.count("ReportsMalformed", malformed)
            raise self.give_up(task, ValueError("malformed report"), "rejected a malformed message")

    def recompute(self, task: Task, background: bool = False) -> None:
        started = time.perf_counter()
        s = self.services()
        if background:
            # The delayed background run has come: whatever this run finds, it may re-arm one.
            self.bookkeeping(lambda: s.grids.release(BACKGROUND_SCHEDULED))
        lags: list[tuple[float, int]] = []

        def visible(ticks: dict[int, int]) -> None:
            # Each chunk's reports are on the map once its tiles are written: their lag ends.
            lags.extend(self.bookkeeping(lambda: s.freshness.record(ticks, time.time()), []))

        try:
            result = recompute.recompute(
                s.grids,
                s.recomputer,
                owner=task.request.id or "",
                lease_s=self.settings.task_time_limit + 5,
                now=datetime.now(UTC),
                computed_at=utc_now_iso(),
                # Two thirds of the soft limit: the last chunk and the background slice fit in
                # the rest. Each run's start costs the reports marked meanwhile: the lease, the
                # run log's replay and, in a pool process that has not run lately, reading the
                # city afresh (~1 s; bench/freshness.py), so runs are long (40 s by default).
                budget_s=self.settings.task_soft_time_limit * 2 / 3,
                on_visible=visible,
                overview_zoom=self.settings.overview_zoom,
                background_every_s=self.settings.background_refresh_s,
                waiter=bool(task.request.retries),
                cache=s.cache,
            )
            # Another run holds the lease: a run must still start after it, and one waiting
            # trigger is enough (recompute.wait_for_lease); the others are done.
            wait = not result.ran and recompute.wait_for_lease(
                s.grids, task.request.id or "", self.settings.task_time_limit + 5
            )
        except TRANSIENT as exc:
            self.retry_or_reject(task, exc)
        if wait:
            raise task.retry(countdown=1.0)
        if result.partitions:  # where the page opens: from the tiles this run wrote
            self.bookkeeping(lambda: summary.refresh(s.grids, s.pyramid, result.partitions))
        if not result.ran:
            log.info("another trigger waits for the running recompute", extra={"task": RECOMPUTE})
            return
        if result.more or result.background_more:
            # The budget or the slice ran out: go on at once. No coalescing delay: the marks
            # are waiting already, and the delay was a pause at every run's end (~0.3 s of lag
            # for the reports that met it; bench/freshness.py).
            self.send_recompute_now()
        elif result.background_in is not None:
            self.schedule_background(s, task, result.background_in)
        duration = (time.perf_counter() - started) * 1000
        stats = metrics()
        stats.observe("TaskDuration", duration, Task=RECOMPUTE)
        stats.count("TilesRecomputed", result.tiles)
        for lag, n in lags:
            for _ in range(min(n, 100)):
                stats.observe("FreshnessLag", lag)
        log.info(
            "grids recomputed",
            extra={
                "task": RECOMPUTE,
                "markers": result.markers,
                "tiles": result.tiles,
                "background_layers": result.background_layers,
                "reports_covered": sum(n for _, n in lags),
                "freshness_max_ms": round(max(lag for lag, _ in lags)) if lags else None,
                "duration_ms": round(duration, 1),
                "outcome": "ok",
            },
        )

    def recover(self) -> None:
        """A worker that starts may replace one that died holding a trigger (a recompute, the
        delayed background run or the one waiting for the lease). Such a message returns only
        after the visibility timeout, or goes to the DLQ if that was its last receive, while
        its flag still keeps anyone else from scheduling (or waiting for) one: marks would wait
        for the next report or the hourly roll. So free the flags and run once if work waits;
        at worst that is one extra run, which costs a query or two."""
        s = self.services()
        try:
            s.grids.release(ingest.SCHEDULED)
            s.grids.release(BACKGROUND_SCHEDULED)
            s.grids.release(recompute.WAITING)  # a waiter that died would turn triggers away
            if s.grids.has_dirty() or s.grids.background_markers(1, page=1):
                ingest.schedule_recompute(s.grids, self.send_recompute, "worker-start", 60.0)
                log.info("work waiting at start; recompute scheduled", extra={"task": RECOMPUTE})
        except TRANSIENT as exc:
            # The emulator or DynamoDB is down: the next report or roll schedules it instead.
            log.warning("start-up recovery failed", extra={"error": type(exc).__name__})

    def schedule_background(self, s: Services, task: Task, delay: float) -> None:
        """One delayed run per background cadence (its own flag), so the background pass runs
        even if no report arrives after this one; the flag of ordinary runs stays free."""
        owner = task.request.id or ""
        ttl = delay + self.settings.task_time_limit
        try:
            if s.grids.acquire(BACKGROUND_SCHEDULED, ttl, owner):
                self.send_recompute_in(delay + 0.5)  # never early: clocks of hosts differ
        except TRANSIENT as exc:
            # A later run schedules it again once the flag has expired.
            log.warning("background run not scheduled", extra={"error": type(exc).__name__})

    def roll_windows(self, task: Task) -> None:
        started = time.perf_counter()
        s = self.services()
        try:
            marked = ingest.roll_windows(s.reports, s.grids, datetime.now(UTC))
            # Also when a trigger was lost (its message in the DLQ): work waits, none scheduled.
            if marked or s.grids.has_dirty() or s.grids.background_markers(1, page=1):
                ingest.schedule_recompute(s.grids, self.send_recompute, task.request.id or "", 60.0)
        except TRANSIENT as exc:
            self.retry_or_reject(task, exc)
        duration = (time.perf_counter() - started) * 1000
        metrics().observe("TaskDuration", duration, Task=ROLL_WINDOWS)
        log.info(
            "windows rolled",
            extra={
                "task": ROLL_WINDOWS,
                "marked": marked,
                "duration_ms": round(duration, 1),
                "outcome": "ok",
            },
        )


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
    runner = Runner(settings, services)
    signals.task_received.connect(remember_receive_count, weak=False)

    @app.task(name=STORE_REPORTS, **common)
    def store_reports(self: Task, items: list[Any]) -> None:
        runner.store_batch(self, items)

    @app.task(name=STORE_REPORT, **common)
    def store_report(self: Task, payload: dict[str, Any]) -> None:
        # The one-report format: messages queued before batching, or other senders.
        headers = self.request.headers if isinstance(self.request.headers, dict) else {}
        request_id = headers.get("request_id") or getattr(self.request, "request_id", None)
        runner.store_batch(self, [{"report": payload, "request_id": request_id}])

    @app.task(name=RECOMPUTE, **{**common, "max_retries": 120})
    def recompute(self: Task, background: bool = False) -> None:
        runner.recompute(self, background)

    @app.task(name=ROLL_WINDOWS, **common)
    def roll_windows(self: Task) -> None:
        runner.roll_windows(self)

    runner.send_recompute = lambda: recompute.apply_async(countdown=settings.recompute_delay)
    runner.send_recompute_now = recompute.apply_async
    signals.worker_ready.connect(lambda **_: runner.recover(), weak=False)
    # Before the pool forks: the services (one boto3 client, ~0.5 s of CPU to build on a small
    # box) are built once and every pool process inherits them, where each built its own in its
    # first task (a cold worker showed its first reports 1.1 s after their 202s, a warm one 0.6
    # s: bench/cold_start.py). Nothing has connected yet, so no socket is shared: each process
    # opens its own connections.
    signals.worker_init.connect(lambda **_: services(), weak=False)
    # Each pool process, once forked: the app, its imports and its clients are long-lived.
    signals.worker_process_init.connect(lambda **_: gctune.tune(), weak=False)
    runner.send_recompute_in = lambda delay: recompute.apply_async(
        kwargs={"background": True}, countdown=delay
    )
