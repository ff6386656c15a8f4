"""The rate limit under gunicorn, as deployed: one web process (no emulator needed: 422s never
enqueue)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support import own_stack

pytestmark = pytest.mark.integration


def test_past_the_burst_the_web_answers_429_with_retry_after(tmp_path: Path) -> None:
    env = {
        "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "6",
        "SAFETYHEATMAP_RATE_LIMIT_BURST": "3",
        "SAFETYHEATMAP_WEB_WORKERS": "1",  # the default: buckets are per process (ratelimit.py)
    }
    with own_stack(tmp_path, env) as stack:
        stack.start_web()
        statuses, retry_after = [], []
        for _ in range(8):
            # A fresh connection each time: the client is its address, not its connection.
            resp = requests.post(
                f"{stack.url}/api/safetyheatmap/report/add",
                data=json.dumps({"lat": 100, "lon": 0, "category": "theft"}),
                headers={"Content-Type": "application/json", "Connection": "close"},
                timeout=10,
            )
            statuses.append(resp.status_code)
            if resp.status_code == 429:
                retry_after.append(int(resp.headers["Retry-After"]))
                assert resp.json()["error"] == "rate_limited"
                assert "frame-ancestors" in resp.headers["Content-Security-Policy"]
        assert statuses == [422, 422, 422] + [429] * 5
        assert all(0 < s <= 10 for s in retry_after)
        assert requests.get(f"{stack.url}/healthz", timeout=10).status_code == 200  # reads free
