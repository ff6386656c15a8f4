"""Thin tasks: decode the message, call shared code, retry explicitly on transient errors.

``store_reports`` takes the web's batches (a list of ``{"report", "request_id"}``);
``store_report`` (one report) stays for messages queued before batching and for other senders.
The worker stores several messages in one pass (``factory.BatchedStore``): the web sends a
report as soon as no send is in flight, so a message may carry one, and each cost four DynamoDB
calls (~48 ms of a pool process at 100 reports/s: the worker fell behind). A pass is stored by
``ingest.store_many`` (idempotent by id: one conditional guard write per keyed report, the rest
in batch writes; dirty marks merged per partition, written once after the reports) and schedules
one recompute. Each pass writes one log line (the request ids it carries, its duration and
outcome) and EMF metrics (``shared.obs.metrics``).
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
from shared.model.taskmsg import RECOMPUTE, ROLL_WINDOWS, STORE_REPORT, STORE_REPORTS
from shared.obs.metrics import metrics
from shared.store.keys import utc_now_iso
from workers import ingest, recompute, summary
from workers.background import BACKGROUND_SCHEDULED
from workers.ingest import ACK, REJECT, Received
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
        # (items, task id, retries, countdown): a store_reports message sent again for a retry.
        self.resend: Callable[[Any, str, int, float], None] = lambda *_: None

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
        self.gave_up(task.name, receives, exc, what)
        return Reject(exc, requeue=False)

    def gave_up(self, task_name: str, receives: int, exc: Exception, what: str) -> None:
        to_dlq = receives >= self.settings.max_receives
        stats = metrics()
        stats.count("TaskFailed", Task=task_name)
        if to_dlq:
            stats.count("DlqMoves", Task=task_name)
        log.error(
            what,
            extra={
                "task": task_name,
                "error": type(exc).__name__,
                "receive": receives,
                "max_receives": self.settings.max_receives,
                "next": "dlq" if to_dlq else "redelivery after the visibility timeout",
            },
        )

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
        """A message on its own (a retry: it has an ETA; the one-report format): a pass of one,
        rejected if malformed (forged: the web validates) to reach the DLQ for inspection; its
        valid reports are stored by then, and storing them again on redrive is a no-op."""
        req = task.request
        receives = int(getattr(req, RECEIVE_COUNT, 0) or 0)
        alone = Received(req.id or "", [items], int(req.retries or 0), receives)
        if self.store_messages(task.name, [alone]) != [ACK]:
            raise Reject("rejected", requeue=False)

    def store_messages(self, task_name: str, messages: list[Received]) -> list[str]:
        """One pass over several ``store_reports`` messages (``factory.BatchedStore``): their valid
        reports stored and marked together, one recompute scheduled; returns each message's
        fate. On a transient failure each message is sent again with its retry count and a
        backoff, as Celery's retry does (the copy is on the queue before the original goes),
        or, its retries spent or the send failing, left to SQS for redelivery or the DLQ."""
        started = time.perf_counter()
        batches = [m.items() for m in messages]
        decoded = [ingest.decode(items or []) for items in batches]
        for error in (e for _, errors in decoded for e in errors):
            log.error("malformed report", extra={"task": task_name, "error": error})
        reports = [r for rs, _ in decoded for r in rs]
        now = datetime.now(UTC)
        s = self.services()
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
                ingest.schedule_recompute(s.grids, self.send_recompute, messages[0].id, 60.0)
        except TRANSIENT as exc:
            return [
                self.retry_message(task_name, m, b, exc)
                for m, b in zip(messages, batches, strict=True)
            ]
        bad = [len(e) + (b is None) for b, (_, e) in zip(batches, decoded, strict=True)]
        malformed = sum(bad)
        stored = sum(1 for res in results if res.stored)
        duration = (time.perf_counter() - started) * 1000
        oldest = min((r.received_at for r in reports), default=None)
        stats = metrics()
        stats.observe("TaskDuration", duration, Task=task_name)
        stats.count("ReportsStored", stored)
        stats.count("ReportsDuplicate", len(reports) - stored)
        if malformed:
            stats.count("ReportsMalformed", malformed)
        log.info(
            "reports stored",
            extra={
                "task": task_name,
                "messages": len(messages),
                "reports": len(reports),
                "stored": stored,
                "duplicates": len(reports) - stored,
                "malformed": malformed,
                "report_ids": [r.id for r in reports],
                "request_ids": [
                    i.get("request_id") for b in batches for i in b or [] if isinstance(i, dict)
                ],
                "queued_ms": round((now - oldest).total_seconds() * 1000) if oldest else None,
                "duration_ms": round(duration, 1),
                "outcome": "malformed" if malformed else "stored",
            },
        )
        for message, n in zip(messages, bad, strict=True):
            if n:
                what = "rejected a malformed message"
                self.gave_up(task_name, message.receives, ValueError("malformed report"), what)
        return [REJECT if n else ACK for n in bad]

    def retry_message(self, task_name: str, message: Received, items: Any, exc: Exception) -> str:
        """A message of a failed pass: sent again for a later try, or left to SQS."""
        if items is None or message.retries >= self.settings.task_max_retries:
            what = "giving up; the message returns to SQS and reaches the DLQ"
            self.gave_up(task_name, message.receives, exc if items else ValueError("none"), what)
            return REJECT
        metrics().count("TaskFailed", Task=task_name)
        log.warning(
            "task failed; retrying",
            extra={"task": task_name, "error": type(exc).__name__, "retry": message.retries},
        )
        try:
            self.resend(items, message.id, message.retries + 1, self.backoff(message.retries))
        except Exception as send_exc:  # any failure: SQS redelivers it after the timeout
            log.warning("retry not sent", extra={"error": type(send_exc).__name__})
            return REJECT
        return ACK

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


def register_tasks(
    app: Celery,
    settings: Settings,
    services: Callable[[], Services],
    store_base: type[Task] = Task,  # the worker's: factory.BatchedStore
) -> None:
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

    @app.task(
        name=STORE_REPORTS,
        base=store_base,
        batch_messages=settings.store_batch_messages,
        batch_linger_s=settings.store_batch_linger_s,
        runner=runner,
        **common,
    )
    def store_reports(self: Task, items: list[Any]) -> None:
        # A message that runs alone: a retry (it has an ETA), or a pool without the consumer.
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

    runner.resend = lambda items, task_id, retries, countdown: store_reports.apply_async(
        (items,), task_id=task_id, retries=retries, countdown=countdown
    )
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
