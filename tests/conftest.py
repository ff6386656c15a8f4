"""One real stack per session, shared by the integration and browser tests: moto server,
gunicorn and a Celery worker on free ports, each checked to be up before tests start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.dev.devstack import Stack
from tests.support import LiveStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    s = Stack(
        tmp_path_factory.mktemp("stack"),
        extra_env={
            "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
            # Overview zooms (<= 8) refresh at most every second, not every minute, so tests
            # that look at them need not wait; test_loop checks the deferral itself.
            "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
            # Tests post hundreds of reports from one address; the limiter has its own test.
            "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
        },
    )
    s.start(workers=1)
    try:
        yield LiveStack(s)
    finally:
        s.stop()
