"""Gunicorn sizing and timeouts from the settings object.

The worker class is gevent by default: a submission mostly waits (for its batch's SendMessage),
and with threads that wait cost an OS thread and GIL hand-offs on every wake-up. Measured on
the 2-core box, the same code and load (docs/BENCHMARKS.md, eighth session): web CPU per
accepted report 0.94-1.00 ms with gevent against 1.30-1.49 ms with 64 threads, and 949-994
accepted reports/s against 642-727 at 1,000/s. gunicorn patches the standard library in each worker
before it imports the app, so boto3, the batcher's threads and the locks become cooperative.
"""

from shared.config import gctune
from shared.config.settings import Settings
from web import hostkey  # noqa: F401 - made in the master: its workers share the key (web/hostkey.py)

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_workers
# gevent_pywsgi: gunicorn's class, keepalive applied to idle connections (web/pywsgi_worker.py)
worker_class = {"gevent_pywsgi": "web.pywsgi_worker.KeepAliveWorker"}.get(
    _settings.web_worker_class, _settings.web_worker_class
)
worker_connections = _settings.web_connections
threads = _settings.web_threads
timeout = _settings.web_timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.web_keepalive
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
limit_request_line = 4094
limit_request_fields = 100
forwarded_allow_ips = "127.0.0.1"


def post_fork(server: object, worker: object) -> None:
    """Each worker process: the app and its imports are long-lived (shared/config/gctune.py)."""
    gctune.tune()
