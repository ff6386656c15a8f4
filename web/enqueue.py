"""The acknowledgement path's only I/O: put reports on the queue, or say why not.

A report is acknowledged only after SQS has accepted the message that carries it, so every
failure here must surface as :class:`QueueUnavailable` (a 503 with Retry-After), never as a 202.

Batching, in one rule: a report is sent at once when no send is in flight; the reports that
arrive while one is in flight go together in the next send (up to ``batch_size`` a message and
SQS's 256 KiB). Each gunicorn worker process has one batcher: request greenlets hand their
report to it and wait; a flusher thread sends whatever waits as one Celery message
(``safetyheatmap.store_reports`` with a list), one send in flight per process. No timer: a lone
or sequential submitter waits for its own SendMessage only (bench/sequential.py: POST p50
2.65 ms, of which a SendMessage to the emulator 1.30 ms, against GET /healthz 0.89 ms; with a
100 ms linger it was ~107 ms), and under load batches grow with the rate by themselves (a
send's duration times the arrival rate: 1.1, 2.4 and 5.3 reports a message at 250, 500 and
1,000 reports/s, bench/load_ack.py), so the message count grows slower than the report count.

Each waiting request learns the fate of its own message: accepted (202) or failed (503). A
request that waited longer than the enqueue timeout gets a 503 even if its message is accepted
later (the watchdog answers it); a retry with the same Idempotency-Key then stores nothing new.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.model.report import Report
from shared.model.taskmsg import STORE_REPORTS, celery_body_encoded, encode
from shared.obs.metrics import Metrics, metrics

"""The batch task (workers/tasks.py registers the same name; a unit test checks)."""

SQS_MESSAGE_LIMIT = 256 * 1024
WATCH_INTERVAL = 0.1
"""How often the watchdog looks for requests that waited too long (their 503 may come this
much after the enqueue timeout)."""

log = logging.getLogger("safetyheatmap.enqueue")


class QueueUnavailable(Exception):
    """SQS did not accept the message; the client should retry later."""


@dataclass
class _Waiting:
    encoded: str
    """The report's item, encoded once: its size cuts batches, and the message joins them."""
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
        send: Callable[[str, str], object] | None = None,
        batch_size: int = 50,
        timeout_s: float = 3.0,
        stats: Metrics | None = None,
    ) -> None:
        self._sqs = sqs
        self._send_message = send or (
            lambda url, body: sqs.send_message(QueueUrl=url, MessageBody=body)
        )
        self._queue_name = queue_name
        self._url: str | None = None
        self._url_lock = threading.Lock()
        self._batch_size = batch_size
        self._timeout = timeout_s
        self._stats = stats
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._sending: list[_Waiting] = []
        self._pid = -1

    # --- the request side -----------------------------------------------------------------
    def __call__(self, report: Report, request_id: str) -> None:
        waiting = _Waiting(encode({"report": report.to_message(), "request_id": request_id}))
        too_large = encoded_size(len(waiting.encoded) + 1) > SQS_MESSAGE_LIMIT
        if too_large:  # pragma: no cover - the body limit (8 KB) keeps a report far smaller
            raise QueueUnavailable("message too large")
        self._start()
        with self._cond:
            self._waiting.append(waiting)
            if len(self._waiting) == 1:  # the flusher waits only while nothing waits
                self._cond.notify()
        # No timeout of its own (a timer per request cost ~20 us of the ~900 us a report costs
        # the web at 1,000/s): the flusher answers it, or the watchdog once it is late.
        waiting.done.wait()
        if waiting.error is not None:
            raise QueueUnavailable(waiting.error)

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
            self._waiting, self._sending = [], []
            threading.Thread(target=self._flush_forever, name="sqs-batcher", daemon=True).start()
            threading.Thread(target=self._watch_forever, name="sqs-watchdog", daemon=True).start()
            self._pid = os.getpid()

    def _flush_forever(self) -> None:
        # The flusher sends each batch itself. With a pool of senders beside it, the hand-over
        # to the sender cost a wait for the event loop as long as the send itself under load
        # (p50 ~10 ms at 1,000 reports/s); the reports that come meanwhile gather either way.
        while True:
            try:
                self._send(self._next_batch())
            except Exception:  # never let the flusher die: requests would wait in vain
                log.exception("enqueue flusher error")

    def _next_batch(self) -> list[_Waiting]:
        """Everything waiting, as far as one message holds, as soon as anything waits (the
        flusher calls this when its previous send has ended)."""
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            batch: list[_Waiting] = []
            total = 0
            for waiting in self._waiting[: self._batch_size]:
                size = len(waiting.encoded) + 1
                if batch and encoded_size(total + size) > SQS_MESSAGE_LIMIT:
                    break
                batch.append(waiting)
                total += size
            del self._waiting[: len(batch)]
            self._sending = batch
            return batch

    def _watch_forever(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            try:
                self.expire(time.monotonic())
            except Exception:  # never let the watchdog die: a hung send would hold requests
                log.exception("enqueue watchdog error")

    def expire(self, now: float) -> int:
        """Answer 503 to the requests that have waited longer than the enqueue timeout,
        whether their report still waits (it is then never sent) or its send
        hangs (a message accepted after that carries a report whose client was told to
        retry; the retry's Idempotency-Key makes it the same report). Returns how many."""
        deadline = now - self._timeout
        with self._cond:
            stale = 0
            while stale < len(self._waiting) and self._waiting[stale].arrived < deadline:
                stale += 1
            late = self._waiting[:stale]
            del self._waiting[:stale]
            late += [w for w in self._sending if w.arrived < deadline and not w.done.is_set()]
        for waiting in late:
            waiting.error = "timed out waiting for SQS"
            waiting.done.set()
        if late:
            self._metrics().count("EnqueueFailed", len(late), Reason="timeout")
        return len(late)

    def _send(self, batch: list[_Waiting]) -> None:
        error: str | None = None
        try:
            items = ",".join(w.encoded for w in batch)
            body = celery_body_encoded(STORE_REPORTS, f"[[{items}]]", self._queue_name)
            self._send_message(self._queue_url(), body)
        except (BotoCoreError, ClientError) as exc:
            self._url = None  # the queue may have been re-created; resolve again next time
            error = type(exc).__name__
        except Exception as exc:
            log.exception("enqueue failed")
            error = type(exc).__name__
        stats = self._metrics()
        if error is None:
            stats.observe("EnqueueBatchSize", len(batch), unit="Count")
            now = time.monotonic()
            stats.observe_many("EnqueueLatency", [(now - w.arrived) * 1000 for w in batch])
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
