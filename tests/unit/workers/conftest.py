"""The worlds most worker tests run in (``support.World``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.workers.support import DENSITY, World, make_world


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, **DENSITY)


@pytest.fixture
def private_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(monkeypatch, PRIVACY_MIN_REPORTS="3")
