"""One real stack per session, shared by the integration and browser tests: moto server,
gunicorn and a Celery worker on free ports, each checked to be up before tests start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import LiveStack, live_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with live_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
