"""The emulator's snapshot: moto's tables round-trip through the file, written whole or not."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from shared.dev import persist


def _table(ddb: object, name: str) -> None:
    ddb.create_table(  # type: ignore[attr-defined]
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


ITEM = {
    "pk": {"S": "r#1"},
    "sk": {"S": "v"},
    "n": {"N": "3.5"},
    "grid": {"B": b"\x00\xffbytes"},
    "m": {"M": {"a": {"L": [{"S": "x"}, {"N": "1"}]}}},
    "ss": {"SS": ["a", "b"]},
}


def test_tables_and_items_survive_a_round_trip(tmp_path: Path) -> None:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _table(ddb, "reports")
        ddb.put_item(TableName="reports", Item=ITEM)
        keeper = persist.Persister(tmp_path, dynamodb_backends)
        keeper.mark()
        assert keeper.save_if_changed()
        assert not keeper.save_if_changed()  # nothing changed since
    with mock_aws():  # a new, empty moto: the emulator's restart
        keeper = persist.Persister(tmp_path, dynamodb_backends)
        assert keeper.load() == 1
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        got = ddb.get_item(TableName="reports", Key={"pk": ITEM["pk"], "sk": ITEM["sk"]})["Item"]
        assert got == ITEM
        _table_exists = ddb.describe_table(TableName="reports")["Table"]["KeySchema"]
        assert [k["AttributeName"] for k in _table_exists] == ["pk", "sk"]


def test_a_failed_write_leaves_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / persist.FILE
    persist.write_atomic(path, {"format": 1, "tables": []})

    def torn(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(persist.json, "dump", torn)
    with pytest.raises(OSError):
        persist.write_atomic(path, {"format": 1, "tables": [{"name": "x"}]})
    assert json.loads(path.read_text()) == {"format": 1, "tables": []}


def test_only_dynamodb_writes_mark_the_snapshot_stale() -> None:
    assert persist.is_write("DynamoDB_20120810.PutItem")
    assert persist.is_write("DynamoDB_20120810.BatchWriteItem")
    assert not persist.is_write("DynamoDB_20120810.Query")
    assert not persist.is_write("AmazonSQS.SendMessage")
    assert not persist.is_write("")


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    persist.write_atomic(tmp_path / persist.FILE, {"format": 99, "tables": []})
    with pytest.raises(ValueError, match="format"):
        persist.Persister(tmp_path, {}).load()
