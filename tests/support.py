"""Helpers for tests over the real stack: a client for it and polling with a deadline."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from shared import aws
from shared.devstack import Stack
from shared.settings import Settings
from shared.storage import ReportRepository


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
