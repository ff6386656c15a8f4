"""Gunicorn and Celery take their sizing from the settings object, never from defaults of their own.

The deployment (infra/, compose.yaml) sizes both only through SAFETYHEATMAP_* variables, so a
setting that these files ignored would silently leave production at the library's default.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from shared.config.settings import Settings
from workers.factory import make_celery

REPO = Path(__file__).resolve().parents[4]

ENV = {
    "SAFETYHEATMAP_HOST": "127.0.0.1",
    "SAFETYHEATMAP_PORT": "8123",
    "SAFETYHEATMAP_WEB_WORKERS": "3",
    "SAFETYHEATMAP_WEB_WORKER_CLASS": "gthread",
    "SAFETYHEATMAP_WEB_CONNECTIONS": "77",
    "SAFETYHEATMAP_WEB_THREADS": "9",
    "SAFETYHEATMAP_WEB_TIMEOUT": "41",
    "SAFETYHEATMAP_GRACEFUL_TIMEOUT": "13",
    "SAFETYHEATMAP_WEB_KEEPALIVE": "2",
    "SAFETYHEATMAP_WORKER_CONCURRENCY": "5",
    "SAFETYHEATMAP_WORKER_PREFETCH": "6",
    "SAFETYHEATMAP_TASK_SOFT_TIME_LIMIT": "50",
    "SAFETYHEATMAP_TASK_TIME_LIMIT": "70",
}


def test_gunicorn_config_comes_from_the_settings(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(REPO / "web" / "gunicorn_conf.py"))
    assert conf["bind"] == "127.0.0.1:8123"
    assert conf["workers"] == 3
    assert conf["worker_class"] == "gthread"
    assert conf["worker_connections"] == 77
    assert conf["threads"] == 9
    assert conf["timeout"] == 41
    assert conf["graceful_timeout"] == 13
    assert conf["keepalive"] == 2


def test_gunicorn_maps_gevent_pywsgi_to_the_keepalive_worker(monkeypatch):
    monkeypatch.setenv("SAFETYHEATMAP_WEB_WORKER_CLASS", "gevent_pywsgi")
    conf = runpy.run_path(str(REPO / "web" / "gunicorn_conf.py"))
    assert conf["worker_class"] == "web.pywsgi_worker.KeepAliveWorker"


def test_celery_config_comes_from_the_settings():
    settings = Settings.from_env(ENV)
    conf = make_celery(settings, services=lambda: None).conf  # type: ignore[arg-type,return-value]
    assert conf.worker_concurrency == 5
    assert conf.worker_prefetch_multiplier == 6
    assert conf.task_soft_time_limit == 50
    assert conf.task_time_limit == 70
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.broker_transport_options["visibility_timeout"] == settings.visibility_timeout
