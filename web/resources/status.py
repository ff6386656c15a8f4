"""GET /api/safetyheatmap/status: is work flowing, and how fresh are the heatmaps.

Numbers and times only (queue and DLQ depth, last computation, freshness lag p50/p95 over recent
minutes): no queue URL, account, endpoint or setting. See ``shared.obs.status`` for the sources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon


class StatusResource:
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._status()
