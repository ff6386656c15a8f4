"""Gunicorn sizing and timeouts from the settings object."""

from shared import gctune
from shared.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
timeout = _settings.web_timeout
graceful_timeout = _settings.graceful_timeout
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
limit_request_line = 4094
limit_request_fields = 100
forwarded_allow_ips = "127.0.0.1"


def post_fork(server: object, worker: object) -> None:
    """Each worker process: the app and its imports are long-lived (shared/gctune.py)."""
    gctune.tune()
