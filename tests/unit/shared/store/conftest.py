"""The store's tests run against moto in-process: the two tables, empty, per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.store.grids import GridRepository
from shared.store.provision import ensure_table
from shared.store.reports import ReportRepository

REPORTS, GRIDS = "reports", "grids"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table in (REPORTS, GRIDS):
            ensure_table(client, table)
        yield client


@pytest.fixture
def reports(ddb: Any) -> ReportRepository:
    return ReportRepository(ddb, REPORTS)


@pytest.fixture
def grids(ddb: Any) -> GridRepository:
    return GridRepository(ddb, GRIDS)
