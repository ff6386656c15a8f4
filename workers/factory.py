"""make_celery(settings): the worker's configuration, every option from the settings object;
``BatchedStore``, how the worker's consumer hands report messages to the pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from billiard.exceptions import WorkerLostError
from celery import Celery, Task, signals
from celery.utils.imports import symbol_by_name
from celery.worker.request import Request, create_request_cls
from celery.worker.strategy import default as default_strategy
from kombu import Queue

from shared.config.settings import Settings
from shared.store import aws
from workers import kombu_fixes
from workers.ingest import ACK, Received
from workers.services import Services, build_services
from workers.tasks import RECEIVE_COUNT, Runner, log, register_tasks


def make_celery(settings: Settings, services: Callable[[], Services] | None = None) -> Celery:
    kombu_fixes.guard_receive()
    app = Celery("safetyheatmap", set_as_current=True)
    endpoint = urlsplit(settings.endpoint_url or "https://aws")
    app.conf.update(
        broker_url=aws.broker_url(settings),
        broker_transport_options={
            "region": settings.aws_region,
            "visibility_timeout": settings.visibility_timeout,
            "wait_time_seconds": settings.wait_time_seconds,
            "polling_interval": 0,
            "is_secure": endpoint.scheme == "https",
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue_name,
        task_queues=[Queue(settings.queue_name)],
        task_create_missing_queues=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_concurrency=settings.worker_concurrency,
        worker_prefetch_multiplier=settings.worker_prefetch,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        enable_utc=True,
    )
    holder: dict[str, Services] = {}

    def get_services() -> Services:
        # Built when the worker starts, before its pool forks (workers/tasks.py, worker_init),
        # or on first use: no client at import.
        if "s" not in holder:
            holder["s"] = services() if services else build_services(settings)
        return holder["s"]

    register_tasks(app, settings, get_services, store_base=BatchedStore)
    return app


class BatchedStore(Task):
    """The class of ``store_reports``: the messages the worker receives are stored several in
    one pass, each acknowledged only after the pass has stored and marked its reports.

    The consumer (the worker's event loop) hands each message to ``Strategy``. A message with an
    ETA or expiry (a Celery retry) takes Celery's own way and runs alone; the others wait until
    `batch_messages` have come or `batch_linger_s` has passed since the first, then go to a pool
    process as one job (``store_pass``), with the task's time limits. The job answers each
    message's fate (``tasks.Runner.store_messages``); a pool process that dies or hits the hard
    limit leaves every message of its pass to SQS (requeued if the process was lost, as
    ``reject_on_worker_lost``). The library celery-batches buffers the same way, but pins
    celery < 5.7 and acknowledges a pass that raised."""

    batch_messages = 10
    batch_linger_s = 0.05
    runner: Runner

    def Strategy(  # noqa: N802 - Celery's name
        self, task: Task, app: Celery, consumer: Any, **kwargs: Any
    ) -> Callable[..., Any]:
        classic = default_strategy(task, app, consumer, **kwargs)
        hostname, eventer = consumer.hostname, consumer.event_dispatcher
        req_cls = create_request_cls(
            symbol_by_name(task.Request), task, consumer.pool, hostname, eventer, app=app
        )
        buffer: list[Request] = []
        timer: list[Any] = []
        allowed: list[Any] = []  # the consumer's QoS that has this task's allowance
        lock = threading.Lock()  # the solo and thread pools' timer runs in a thread of its own

        def flush() -> None:
            with lock:
                if timer:
                    timer.pop().cancel()
                batch = buffer[:]
                buffer.clear()
            if batch:
                self._dispatch(consumer.pool, batch)

        def on_message(
            message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
        ) -> Any:
            headers = message.headers or {}
            if (
                body is not None
                or "args" in message.payload
                or headers.get("eta")
                or headers.get("expires")
            ):
                return classic(message, body, ack, reject, callbacks, **kw)
            req = req_cls(
                message,
                on_ack=ack,
                on_reject=reject,
                app=app,
                hostname=hostname,
                eventer=eventer,
                task=task,
                connection_errors=consumer.connection_errors,
                body=message.body,
                headers=headers,
                decoded=False,
                utc=app.uses_utc_timezone(),
            )
            signals.task_received.send(sender=consumer, request=req)
            if consumer.qos not in allowed:
                # A pass's worth of messages beyond the prefetch (as for ETA tasks): buffered,
                # they hold slots; at 12 (4 x 3) a full pass left 2, and once behind, the worker
                # alternated passes of ten and of one and never caught up (bench/freshness.py).
                allowed[:] = [consumer.qos]
                consumer.qos.increment_eventually(self.batch_messages)
            with lock:
                buffer.append(req)
                full = len(buffer) >= self.batch_messages
                if not full and not timer:
                    timer.append(consumer.timer.call_after(self.batch_linger_s, flush))
            if full:
                flush()
            return None

        return on_message

    def _dispatch(self, pool: Any, batch: list[Request]) -> None:
        received = [
            Received(
                r.id,
                r.args,
                int(r.request_dict.get("retries") or 0),
                int(r.request_dict.get(RECEIVE_COUNT) or 0),
            )
            for r in batch
        ]

        def done(fates: Any) -> None:
            for i, req in enumerate(batch):
                ok = isinstance(fates, list) and i < len(fates) and fates[i] == ACK
                if ok:
                    req.acknowledge()
                else:
                    req.reject(requeue=False)

        def failed(einfo: Any) -> None:
            lost = isinstance(getattr(einfo, "exception", None), WorkerLostError)
            log.error(
                "a store pass failed",
                extra={
                    "task": self.name,
                    "error": type(getattr(einfo, "exception", None)).__name__,
                    "messages": len(batch),
                    "next": "requeued" if lost else "redelivery after the visibility timeout",
                },
            )
            for req in batch:
                req.reject(requeue=lost)

        pool.apply_async(
            store_pass,
            (self, received),
            callback=done,
            error_callback=failed,
            soft_timeout=self.soft_time_limit,
            timeout=self.time_limit,
        )


def store_pass(task: BatchedStore, received: list[Received]) -> list[str]:
    """A pool process's job: one pass over received messages; each message's fate."""
    return task.runner.store_messages(task.name, received)
