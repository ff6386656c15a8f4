"""gevent patches the standard library in each gunicorn worker before the app is imported.

Whatever the master imports first keeps the unpatched ``threading`` and ``socket``: moto's SQS
queues wait on a ``threading.Condition`` made at import time, so an emulator that imported moto
in the master would block its one event loop for every long poll; the web's boto3 would open
blocking sockets. These tests keep those imports out of the master.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


CLIENTS = ("moto", "botocore", "boto3", "urllib3", "falcon")


def imported_after(code: str, watched: tuple[str, ...] = CLIENTS) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_the_emulator_entry_module_imports_no_moto() -> None:
    assert imported_after("import shared.dev.emulator") == set()


def test_the_web_gunicorn_config_imports_no_aws_client_or_app() -> None:
    assert imported_after("import runpy; runpy.run_path('web/gunicorn_conf.py')") == set()


def test_the_emulator_serves_under_gevent_and_the_web_by_default_too() -> None:
    from shared.config.settings import Settings  # noqa: PLC0415
    from shared.dev.emulator import _Server  # noqa: PLC0415 - the module is import-light (above)

    assert _Server("127.0.0.1", 0, 10).options["worker_class"] == "gevent"
    assert Settings.from_env({}).web_worker_class == "gevent"


def test_neither_service_imports_scipy_signal_or_stats() -> None:
    """They cost ~1.3 s of every web and worker start (a worker woken from zero, a test
    stack), for one convolution that scipy.fft does as well (shared/geo/density.py)."""
    heavy = ("scipy.signal", "scipy.stats")
    assert imported_after("import web.wsgi, workers.celery_app", heavy) == set()
