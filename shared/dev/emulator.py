"""The embedded AWS emulator: moto's app, with shared/dev/motofixes.py, under gunicorn.

werkzeug's development server closes the connection after every response: each AWS call paid
a TCP connect and a new server thread (~125 connections/s at 100 reports/s, a third of the
emulator's CPU). moto's app is served by gunicorn instead: one process (moto keeps its state in
memory), keep-alive, and gevent's worker. With gunicorn's thread worker the emulator spent much
of its CPU on handing the GIL between its request threads (py-spy during bench/freshness.py:
socket writes waiting to win it back 17 %, the selector 8 %, against 31 % in moto's own
dispatch); with gevent a request is a greenlet of one loop (docs/BENCHMARKS.md, eighth session).

gevent must patch the standard library before moto is imported: moto's SQS queues wait for
messages on a ``threading.Condition`` made at import time, and an unpatched one would block the
whole loop for a long poll. So this module imports neither moto nor the fixes at its top; the
worker imports them in ``load()``, after gunicorn's gevent worker has patched.

With ``--data-dir`` the DynamoDB tables are loaded from that folder before serving and saved to it
after changes and at a warm stop (shared/dev/persist.py); ``make run`` passes one, the tests'
stacks none (each starts empty).

Start: ``python -m shared.dev.emulator -H 127.0.0.1 -p PORT [--data-dir DIR]`` (moto_server's
arguments). ``make run``, the tests and the benchmarks start this; compose.yaml runs the stock
moto image.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from shared.config import gctune


class _Server(BaseApplication):
    """moto's WSGI app under gunicorn (one process: moto keeps its state in memory)."""

    def __init__(
        self, host: str, port: int, connections: int, data_dir: Path | None = None
    ) -> None:
        self.data_dir = data_dir
        self.persister: Any = None
        self.options = {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": "gevent",
            # A long-polling ReceiveMessage holds a greenlet for up to 20 s: one per consumer.
            "worker_connections": connections,
            # Clients keep their pooled connections for minutes: close idle ones later than
            # that, so a reused connection is rarely one the server has just dropped.
            "keepalive": 300,
            "timeout": 0,  # a long poll or a big scan is no reason to restart (and empty) it
            "graceful_timeout": 2,  # long polls would hold a stop for their 20 s
            "accesslog": None,  # the services log what they ask
            "loglevel": "warning",
            # SIGINT/SIGQUIT reach the worker here: the warm stop's last save.
            "worker_int": self._on_stop,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In the worker, after gevent's patching: moto's locks and waits are cooperative."""
        # PLC0415 ignored: these imports must follow gevent's patching (module docstring)
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            create_backend_app,
        )

        from shared.dev import motofixes  # noqa: PLC0415

        motofixes.patch()
        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.data_dir is not None:
            app = self._persisting(app, self.data_dir)
        gctune.tune()  # now that moto's modules and models exist
        return app

    def _persisting(self, app: Any, data_dir: Path) -> Any:
        """Tables loaded before the first request is served; saved by a greenlet from then."""
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 - after patching

        from shared.dev.persist import Persister  # noqa: PLC0415

        self.persister = Persister(data_dir, dynamodb_backends)
        started = time.monotonic()
        items = self.persister.load()
        print(
            f"emulator: {items} items loaded from {data_dir} in {time.monotonic() - started:.2f}s",
            flush=True,
        )
        self.persister.start()
        return self.persister.wrap(app)

    def _on_stop(self, worker: Any) -> None:
        if self.persister is not None:
            self.persister.stop()


def main(argv: list[str] | None = None) -> None:
    """moto_server's -H and -p; moto's app is served by gunicorn instead of werkzeug's
    development server, which closes the connection after every response (and waits up to
    10 ms to drain it): each AWS call paid a TCP handshake and a new server thread, a third
    of the emulator's CPU at 100 reports/s (py-spy), and the clients' connect time too."""
    parser = argparse.ArgumentParser(prog="python -m shared.dev.emulator")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    # moto builds the URLs it hands out (queue URLs) from MOTO_PORT when it is set.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    sys.argv = sys.argv[:1]  # gunicorn parses the command line too: it is ours
    _Server(args.host, args.port, args.connections, args.data_dir).run()


if __name__ == "__main__":
    main()
