"""The acknowledgement path's only I/O: put reports on the queue, or say why not.

A report is acknowledged only after SQS has accepted the message that carries it, so every
failure here must surface as :class:`QueueUnavailable` (a 503 with Retry-After), never as a 202.

Batching. Each gunicorn worker process has one batcher: request threads hand their report to it
and wait; a flusher thread sends the waiting reports as one Celery message
(``safetyheatmap.store_reports`` with a list). A report that finds no send in flight goes at
once (no added latency when the service is quiet); under load, a batch is cut when ``ready``
reports wait or ``linger`` after its first report arrived, and takes up to ``batch_size``; while
all ``MAX_IN_FLIGHT`` sends are busy reports keep gathering, so batches grow with load by
themselves and the message count (the SQS bill, and the worker's tasks) grows far slower than
the report count. At high rates ``ready`` reports come long before the linger ends, or gather
while the previous send is in flight, so the linger costs nothing there; at moderate rates it
makes batches of several reports where a short one sent one or two, each a task for the worker
(bench/freshness.py: at 100 reports/s, 3.4 reports a message with a 20 ms linger and the worker
fell behind; 6.6 with 50 ms, and it kept up; 8 with 100 ms, and the emulator's load fell
enough for reports to show ~0.6 s sooner at the median). Each waiting
request learns the fate of its own message: accepted (202) or failed (503). A request that
waited longer than the enqueue timeout gets a 503 even if its message is accepted later; a retry
with the same Idempotency-Key then stores nothing new.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.metrics import Metrics, metrics
from shared.report import Report
from shared.taskmsg import STORE_REPORTS, celery_body

"""The batch task (workers/tasks.py registers the same name; a unit test checks)."""

SQS_MESSAGE_LIMIT = 256 * 1024
MAX_IN_FLIGHT = 1
"""Concurrent SendMessage calls per process; while all are busy, reports gather into batches."""

log = logging.getLogger("safetyheatmap.enqueue")


class QueueUnavailable(Exception):
    """SQS did not accept the message; the client should retry later."""


@dataclass
class _Waiting:
    item: dict[str, Any]
    size: int
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def encoded_size(payload_bytes: int) -> int:
    """Upper bound of the MessageBody for JSON args of this size: base64 twice plus headers."""
    return ((payload_bytes + 400) * 4 // 3 + 1200) * 4 // 3


class SqsEnqueuer:
    def __init__(
        self,
        sqs: Any,
        queue_name: str,
        *,
        batch_size: int = 50,
        ready: int | None = None,
        linger_s: float = 0.010,
        timeout_s: float = 3.0,
        stats: Metrics | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_name = queue_name
        self._url: str | None = None
        self._url_lock = threading.Lock()
        self._batch_size = batch_size
        self._ready = min(ready or batch_size, batch_size)
        self._linger = linger_s
        self._timeout = timeout_s
        self._stats = stats
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._slots = threading.Semaphore(MAX_IN_FLIGHT)
        self._in_flight = 0
        self._last_cut = 0.0
        self._pid = -1
        self._pool: ThreadPoolExecutor | None = None

    # --- the request side -----------------------------------------------------------------
    def __call__(self, report: Report, request_id: str) -> None:
        item = {"report": report.to_message(), "request_id": request_id}
        waiting = _Waiting(item, len(json.dumps(item, separators=(",", ":"))) + 1)
        if encoded_size(waiting.size) > SQS_MESSAGE_LIMIT:  # pragma: no cover - body limit: 8 KB
            raise QueueUnavailable("message too large")
        self._start()
        with self._cond:
            self._waiting.append(waiting)
            if len(self._waiting) in (1, self._ready):  # the flusher waits for these only
                self._cond.notify()
        if not waiting.done.wait(self._timeout + self._linger):
            self._metrics().count("EnqueueFailed", Reason="timeout")
            raise QueueUnavailable("timed out waiting for SQS")
        if waiting.error is not None:
            raise QueueUnavailable(waiting.error)
        self._metrics().observe("EnqueueLatency", (time.monotonic() - waiting.arrived) * 1000)

    def ping(self) -> None:
        """Readiness: the queue exists and answers."""
        try:
            self._sqs.get_queue_attributes(QueueUrl=self._queue_url(), AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            self._url = None
            raise QueueUnavailable(type(exc).__name__) from exc

    # --- the flusher ----------------------------------------------------------------------
    def _start(self) -> None:
        """One flusher per process, started on first use (gunicorn forks after building apps)."""
        if self._pid == os.getpid():
            return
        with self._cond:
            if self._pid == os.getpid():
                return
            self._waiting = []
            self._slots = threading.Semaphore(MAX_IN_FLIGHT)
            self._in_flight = 0
            self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="sqs-send")
            threading.Thread(target=self._flush_forever, name="sqs-batcher", daemon=True).start()
            self._pid = os.getpid()

    def _flush_forever(self) -> None:
        while True:
            try:
                batch = self._next_batch()
                assert self._pool is not None
                self._pool.submit(self._send, batch)
            except Exception:  # never let the flusher die: requests would wait in vain
                log.exception("enqueue flusher error")

    def _next_batch(self) -> list[_Waiting]:
        with self._cond:
            while not self._waiting:
                self._cond.wait()
        self._slots.acquire()  # released by _send; while none is free, reports accumulate
        with self._cond:
            # A lone report goes at once. Under load (a send in flight, or the last batch cut
            # less than `linger` ago) a batch is cut `linger` after the later of its first
            # report and the previous cut: at most one message per `linger` per slot.
            now = time.monotonic()
            busy = self._in_flight > 0 or now - self._last_cut < self._linger
            start = max(self._waiting[0].arrived, self._last_cut)
            deadline = start + self._linger if busy else now
            while len(self._waiting) < self._ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Waiting] = []
            total = 0
            for waiting in self._waiting[: self._batch_size]:
                if batch and encoded_size(total + waiting.size) > SQS_MESSAGE_LIMIT:
                    break
                batch.append(waiting)
                total += waiting.size
            del self._waiting[: len(batch)]
            self._in_flight += 1
            self._last_cut = time.monotonic()
            return batch

    def _send(self, batch: list[_Waiting]) -> None:
        error: str | None = None
        try:
            body = celery_body(STORE_REPORTS, [[w.item for w in batch]], self._queue_name)
            self._sqs.send_message(QueueUrl=self._queue_url(), MessageBody=body)
        except (BotoCoreError, ClientError) as exc:
            self._url = None  # the queue may have been re-created; resolve again next time
            error = type(exc).__name__
        except Exception as exc:
            log.exception("enqueue failed")
            error = type(exc).__name__
        finally:
            with self._cond:
                self._in_flight -= 1
            self._slots.release()
        stats = self._metrics()
        if error is None:
            stats.observe("EnqueueBatchSize", len(batch), unit="Count")
        else:
            stats.count("EnqueueFailed", len(batch), Reason=error)
            log.warning("SQS did not accept a batch", extra={"error": error, "reports": len(batch)})
        for waiting in batch:
            waiting.error = error
            waiting.done.set()

    def _metrics(self) -> Metrics:
        return self._stats or metrics()

    def _queue_url(self) -> str:
        if self._url is None:
            with self._url_lock:
                if self._url is None:
                    self._url = self._sqs.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._url
