"""The emulator's fixes change what calls cost, never what they answer."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from typing import Any

import boto3
import moto
import moto.backends
import moto.core.responses
import moto.dynamodb.responses
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import method_names_from_class
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.models import SQSBackend, sqs_backends
from moto.sqs.responses import SQSResponse

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


def test_retention_check_still_tells_expired_messages(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    sqs.send_message(QueueUrl=url, MessageBody="new")
    motofixes.patch()
    backend: SQSBackend = sqs_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"]
    old, new = backend.get_queue("q")._messages
    old.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
    assert not backend.is_message_valid_based_on_retention_period("q", old)
    assert backend.is_message_valid_based_on_retention_period("q", new)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert "old" not in [m["Body"] for m in got]


def test_cached_routing_and_dispatch_answer_as_stock_moto_does() -> None:
    """The per-request directory listing and method listing, cached, give the same answers."""
    motofixes.patch()
    root = os.path.dirname(moto.__file__)
    stock = {
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name)) and not name.startswith("__")
    }
    assert set(moto.backends.list_of_moto_modules()) == stock
    assert {"sqs", "dynamodb", "ecs"} <= stock
    for cls in (SQSResponse, DynamoHandler):
        names = moto.core.responses.method_names_from_class(cls)
        assert set(names) == set(method_names_from_class(cls))
        assert "receive_message" in names or "query" in names


def _patched_table(items: Iterable[dict[str, Any]]) -> Any:
    """The emulator's fixes installed, and table `t` holding these items; its client."""
    motofixes.patch()
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    _table(ddb)
    for item in items:
        ddb.put_item(TableName="t", Item=item)
    return ddb


def _read_answers(ddb: Any) -> list[Any]:
    """Every read the fast encoder serves, over every attribute type, parsed by botocore."""
    answers: list[Any] = []
    for query in (
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}},
        {
            "KeyConditionExpression": "pk = :p AND sk > :s",
            "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"S": "k3"}},
            "ProjectionExpression": "sk, b, m.inner, l[0]",
            "ScanIndexForward": False,
            "ReturnConsumedCapacity": "TOTAL",
        },
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
    ):
        answers.append(_all_pages(ddb, query, 4))
    for key in ("k1", "k2", "missing"):
        answers.append(ddb.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": key}}))
    answers.append(
        ddb.get_item(
            TableName="t",
            Key={"pk": {"S": "a"}, "sk": {"S": "k5"}},
            ProjectionExpression="bs, ns, #n",
            ExpressionAttributeNames={"#n": "null"},
        )
    )
    keys = [{"pk": {"S": "a"}, "sk": {"S": f"k{i}"}} for i in (0, 3, 9, 42)]
    answers.append(
        ddb.batch_get_item(
            RequestItems={"t": {"Keys": keys, "ProjectionExpression": "pk, sk, b, l"}},
            ReturnConsumedCapacity="TOTAL",
        )["Responses"]
    )
    answers.append(ddb.batch_get_item(RequestItems={"t": {"Keys": keys}})["Responses"])
    for answer in answers:
        for page in answer if isinstance(answer, list) else [answer]:
            if isinstance(page, dict):
                page.pop("ResponseMetadata", None)
    return answers


def test_fast_read_encoding_answers_as_stock_moto_does(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Query, GetItem and BatchGetItem written straight to JSON parse to what moto's
    serializer gives, binary and nested values included."""
    ddb = _patched_table(
        {
            "pk": {"S": "a"},
            "sk": {"S": f"k{i}"},
            "n": {"N": str(i * 1.5)},
            "b": {"B": bytes([i, 0, 255, 10]) * (i + 1)},
            "bs": {"BS": [b"\x00\x01", bytes([i + 2])]},
            "ss": {"SS": ["x", f"y{i}", "é\u2028"]},
            "ns": {"NS": ["1", str(i + 10)]},
            "m": {"M": {"inner": {"S": "v"}, "bin": {"B": b"\xfe"}, "flag": {"BOOL": True}}},
            "l": {"L": [{"N": "7"}, {"M": {"deep": {"L": [{"B": b"\x01"}, {"NULL": True}]}}}]},
            "null": {"NULL": True},
            "bool": {"BOOL": i % 2 == 0},
        }
        for i in range(10)
    )
    fast = _read_answers(ddb)
    monkeypatch.setattr(moto.dynamodb.responses, "DynamoResult", motofixes._StockDynamoResult)
    assert _read_answers(ddb) == fast


def _sets_sorted(value: Any) -> Any:
    """Set members in order: moto's own projection returns them in Python set order."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") else _sets_sorted(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_sets_sorted(v) for v in value]
    return value


def test_projected_reads_answer_as_stock_moto_does(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Top-level projections take the item's values as stored; nested ones go to moto."""
    ddb = _patched_table(
        {
            "pk": {"S": "p"},
            "sk": {"S": f"k{i}"},
            "lat": {"N": repr(51.5 + i / 7)},
            "n": {"N": "1E+2"},
            "ss": {"SS": ["b", "a", f"c{i}"]},
            "m": {"M": {"inner": {"S": "v"}}},
            "bin": {"B": bytes([i, 255])},
        }
        for i in range(6)
    )
    reads = [
        {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "lat, n, ss, bin, gone"},
        {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "#s, m.inner, lat"},
        {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk"},
    ]

    def answers() -> list[Any]:
        out = []
        for read in reads:
            names = {"ExpressionAttributeNames": {"#s": "sk"}} if "#s" in str(read) else {}
            values = {":p": {"S": "p"}}
            out.append(_all_pages(ddb, {**read, "ExpressionAttributeValues": values, **names}, 4))
        out.append(
            ddb.get_item(
                TableName="t",
                Key={"pk": {"S": "p"}, "sk": {"S": "k2"}},
                ProjectionExpression="m, n",
            )["Item"]
        )
        return _sets_sorted(out)

    fast = answers()
    monkeypatch.setattr(moto.dynamodb.models.dynamo_type.Item, "project", motofixes._stock_project)
    assert answers() == fast
    assert fast[0][0][0][0] == {
        "lat": {"N": repr(51.5)},
        "n": {"N": "1E+2"},
        "ss": {"SS": ["a", "b", "c0"]},
        "bin": {"B": bytes([0, 255])},
    }


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


def test_the_item_size_limit_holds_at_the_same_byte(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    _table(ddb)
    motofixes.patch()
    # moto's limit is 405,000 bytes of names and values: pk + "p", sk + "s", blob + value.
    fixed = len("pk") + len("p") + len("sk") + len("s") + len("blob")
    fits = {"pk": {"S": "p"}, "sk": {"S": "s"}, "blob": {"S": "x" * (405_000 - fixed)}}
    ddb.put_item(TableName="t", Item=fits)
    too_big = fits | {"blob": {"S": "x" * (405_001 - fixed)}}
    with pytest.raises(ddb.exceptions.ClientError, match="Item size has exceeded"):
        ddb.put_item(TableName="t", Item=too_big)


def test_sends_read_only_the_dedup_flag_and_counts_stay_right(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    motofixes.patch()
    fifo = sqs.create_queue(
        QueueName="q.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(2):  # the same body twice: content-based deduplication keeps one
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    plain = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=plain, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(3)]
    )
    sqs.send_message(QueueUrl=plain, MessageBody="delayed", DelaySeconds=60)
    counts = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for url in (fifo, plain)
    }
    assert counts[fifo]["ApproximateNumberOfMessages"] == "1"
    assert counts[fifo]["ContentBasedDeduplication"] == "true"
    assert counts[plain]["ApproximateNumberOfMessages"] == "3"
    assert counts[plain]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "ContentBasedDeduplication" not in counts[plain]


@pytest.mark.parametrize(
    "body",
    [
        "<R><RequestId>old</RequestId><X>1</X></R>",
        '{"Messages": [{"Body": "' + "QUFB" * 1000 + '"}]}',
        b"<R><RequestId>bytes are left alone</RequestId></R>",
        "",
    ],
)
def test_request_ids_are_written_as_stock_moto_writes_them(body: Any) -> None:
    stock = motofixes._stock_enrich_response.__func__  # kept before patch() replaces it
    headers: dict[str, Any] = {"status": 200}
    stock_headers, stock_body = stock(dict(headers), body)
    ours_headers, ours_body = motofixes._enrich_response(dict(headers), body)
    # Each call draws its own random id: compare with it put back.
    ours_id, stock_id = ours_headers["x-amzn-requestid"], stock_headers["x-amzn-requestid"]
    assert ours_headers == dict(stock_headers, **{"x-amzn-requestid": ours_id})
    assert ours_headers["status"] == "200"
    assert ours_body == (
        stock_body.replace(stock_id, ours_id) if isinstance(stock_body, str) else stock_body
    )


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
