"""The emulator's fix changes what a Query costs, never what it answers; it is written for one
moto release and refuses any other."""

from __future__ import annotations

import random
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from shared.dev import motofixes

QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3"}}},
    {
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":p": {"S": "p1"}, ":a": {"S": "s10"}, ":b": {"S": "s40"}},
    },
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "p2"}, ":s": {"S": "s1"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :p",
        "FilterExpression": "v > :v",
        "ProjectionExpression": "sk, v",
        "ExpressionAttributeValues": {":p": {"S": "p0"}, ":v": {"N": "50"}},
    },
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nope"}}},
    {
        "KeyConditionExpression": "g = :g",
        "IndexName": "by-g",
        "ExpressionAttributeValues": {":g": {"S": "g1"}},
    },
]


def _all_pages(ddb: Any, query: dict[str, Any], limit: int | None) -> list[Any]:
    kwargs = {"TableName": "t", **query} | ({"Limit": limit} if limit else {})
    pages = []
    while True:
        page = ddb.query(**kwargs)
        pages.append((page["Items"], page.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield


def _table(ddb: Any, *extra: str, name: str = "t", sort_type: str = "S", **options: Any) -> None:
    """Table `name` keyed by pk (a string) and sk (`sort_type`), with `extra` string
    attributes defined."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", *extra)]
        + [{"AttributeName": "sk", "AttributeType": sort_type}],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )


def test_table_queries_answer_as_stock_moto_does(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    index = {
        "IndexName": "by-g",
        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
    }
    _table(ddb, "g", GlobalSecondaryIndexes=[index])
    rng = random.Random(3)
    for i in range(300):
        item = {"pk": {"S": f"p{i % 5}"}, "sk": {"S": f"s{i}"}, "v": {"N": str(rng.randint(0, 99))}}
        if i % 7 == 0:
            item["g"] = {"S": f"g{i % 2}"}
        ddb.put_item(TableName="t", Item=item)
    cases = [(q, limit) for q in QUERIES for limit in (None, 7)]
    stock = [_all_pages(ddb, q, limit) for q, limit in cases]
    motofixes.patch()
    assert [_all_pages(ddb, q, limit) for q, limit in cases] == stock


def test_number_sort_keys_keep_their_numeric_order(aws: None) -> None:
    """Sorted by each item's cast value: Decimal for numbers, so 10 follows 9, not 1."""
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    _table(ddb, name="n", sort_type="N")
    values = ["10", "9", "-2.5", "100", "0", "1e3", "-11"]
    for v in values:
        ddb.put_item(TableName="n", Item={"pk": {"S": "p"}, "sk": {"N": v}})
    motofixes.patch()
    got = ddb.query(
        TableName="n",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )["Items"]
    assert [float(i["sk"]["N"]) for i in got] == sorted(float(v) for v in values)


def test_the_fix_was_written_for_the_installed_moto() -> None:
    """Fails on a moto upgrade on purpose: the fix replaces private methods of moto's, so a new
    release is a review of shared/dev/motofixes.py (then set MOTO_VERSION to it)."""
    assert moto.__version__ == motofixes.MOTO_VERSION, (
        f"moto {moto.__version__} is installed; shared/dev/motofixes.py was written for "
        f"{motofixes.MOTO_VERSION}: review its fix against this moto"
    )


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "0.0.1")
    with pytest.raises(motofixes.MotoVersionError, match="written for moto"):
        motofixes.patch()
