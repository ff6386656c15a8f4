"""gunicorn's gevent_pywsgi worker, with gunicorn's ``keepalive`` applied to idle connections.

gevent's HTTP server waits for a connection's next request for as long as the client keeps it
open: an idle keep-alive connection held a greenlet and a slot of ``worker_connections`` for
good, and a stop waited the whole ``graceful_timeout`` for it (gunicorn counts open connections,
idle or not, as work in progress: 20 s for every deploy behind API Gateway, whose VPC link pools
its connections). gunicorn's own gevent worker closes a connection that sends no request within
``keepalive`` seconds; this does the same, with a timeout on the socket while the request line
is awaited (cheaper than a ``gevent.Timeout`` per request: it costs only when the read blocks).
``WEB_WORKER_CLASS=gevent_pywsgi`` selects this class (web/gunicorn_conf.py).
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler


class KeepAliveHandler(PyWSGIHandler):
    keepalive: float | None = None
    """Seconds a connection may wait for its next request line; set by the worker."""

    def read_requestline(self) -> Any:
        # A timeout is an OSError: handle_one_request then returns None and the connection
        # closes. The request's headers and body are read with the socket blocking, as before.
        self.socket.settimeout(self.keepalive)
        try:
            return super().read_requestline()
        finally:
            self.socket.settimeout(None)


class KeepAliveWorker(GeventPyWSGIWorker):
    wsgi_handler = KeepAliveHandler

    def init_process(self) -> None:
        # 0 turns keep-alive off in gunicorn; gevent's server still reads the next request, so
        # give it the shortest wait instead of none.
        KeepAliveHandler.keepalive = float(self.cfg.keepalive) or 0.001
        super().init_process()
