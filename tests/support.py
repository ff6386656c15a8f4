"""Helpers for tests over the real stack: a client for it and polling with a deadline."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import png
import requests

from shared.config.settings import Settings
from shared.dev.devstack import Stack
from shared.store import aws
from shared.store.reports import ReportRepository


class LiveStack:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.url
        self.settings: Settings = stack.settings()
        self.http = requests.Session()

    def post_report(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.http.post(
            f"{self.url}/api/safetyheatmap/report/add",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=10,
        )

    def heatmap(self, **params: Any) -> dict[str, Any]:
        resp = self.http.get(f"{self.url}/api/safetyheatmap/heatmap/get", params=params, timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def reports(self) -> ReportRepository:
        return ReportRepository(aws.client(self.settings, "dynamodb"), self.settings.reports_table)

    def sqs(self) -> Any:
        return aws.client(self.settings, "sqs")

    def queue_url(self, name: str | None = None) -> str:
        url: str = self.sqs().get_queue_url(QueueName=name or self.settings.queue_name)["QueueUrl"]
        return url


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll with a deadline; returns the first truthy result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def post_from(url: str, body: dict[str, Any], client: str) -> int:
    """POST a report from a loopback address of its own (Linux routes all of 127/8 to lo), so
    the web sees another client: another rate-limit bucket, another pseudonym."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=10, source_address=(client, 0)
    )
    try:
        conn.request(
            "POST",
            "/api/safetyheatmap/report/add",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return conn.getresponse().status
    finally:
        conn.close()


def png_alpha(data: bytes) -> Any:
    """The alpha channel of a served PNG tile, as a (rows, cols) array."""
    width, height, rows, _ = png.Reader(bytes=data).asRGBA8()
    return np.vstack([np.frombuffer(bytes(row), dtype=np.uint8) for row in rows]).reshape(
        height, width, 4
    )[:, :, 3]


def new_key() -> str:
    return str(uuid.uuid4())


@contextmanager
def own_stack(folder: Path, env: dict[str, str]) -> Iterator[Stack]:
    """A stack of the test's own, for settings the shared one must not have; stopped after
    (whatever the test started of it)."""
    stack = Stack(folder, extra_env=env)
    try:
        yield stack
    finally:
        stack.stop()


TEST_STACK_ENV = {
    "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
    # Overview zooms (<= 8) refresh at most every second, not every minute, so tests that look
    # at them need not wait; test_loop checks the deferral itself.
    "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
    # Tests post hundreds of reports from one address; the limiter has its own test.
    "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
}


@contextmanager
def live_stack(folder: Path) -> Iterator[LiveStack]:
    """A started stack with the tests' settings and one worker, stopped after."""
    with own_stack(folder, TEST_STACK_ENV) as s:
        s.start(workers=1)
        yield LiveStack(s)
