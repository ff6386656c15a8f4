"""make_celery(settings): the worker's configuration, every option from the settings object."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from celery import Celery
from kombu import Queue

from shared.config.settings import Settings
from shared.store import aws
from workers import kombu_fixes
from workers.services import Services, build_services
from workers.tasks import register_tasks


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

    register_tasks(app, settings, get_services)
    return app
