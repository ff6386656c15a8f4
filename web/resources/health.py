"""Liveness and readiness: alive is cheap; ready means the queue and the tables answer."""

from __future__ import annotations

from collections.abc import Callable

import falcon


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    def __init__(self, checks: dict[str, Callable[[], None]]) -> None:
        self._checks = checks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = {}
        for name, check in self._checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception:
                results[name] = "unavailable"
        ready = all(v == "ok" for v in results.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"status": "ready" if ready else "not_ready", "checks": results}
