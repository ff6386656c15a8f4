"""Batches as DynamoDB allows them (25 writes, 100 keys), each item once, unprocessed ones retried
until done or loudly given up; queries followed page after page."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.store import dynamo
from shared.store.grids import GridRepository


def put(i: int) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "sk": {"S": "g"}}}}


def key(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{i}"}, "sk": {"S": "g"}}


class Flaky:
    """A client that processes half of every new request and all of a retried one (entries it
    left unprocessed before); with `give_up`, none ever."""

    def __init__(self, give_up: bool = False) -> None:
        self.give_up = give_up
        self.calls: list[int] = []
        self.written: list[dict[str, Any]] = []
        self._left: set[str] = set()
        self._lock = threading.Lock()

    def _split(self, entries: list[Any]) -> tuple[list[Any], list[Any]]:
        with self._lock:
            self.calls.append(len(entries))
            if self.give_up:
                return [], entries
            if all(repr(e) in self._left for e in entries):
                return entries, []
            half = len(entries) // 2
            self._left.update(repr(e) for e in entries[half:])
            return entries[:half], entries[half:]

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        done, left = self._split(RequestItems["t"])
        with self._lock:
            self.written += done
        return {"UnprocessedItems": {"t": left} if left else {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        request = RequestItems["t"]
        done, left = self._split(request["Keys"])
        unprocessed = {"t": {**request, "Keys": left}} if left else {}
        return {"Responses": {"t": [dict(k) for k in done]}, "UnprocessedKeys": unprocessed}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    monkeypatch.setattr(dynamo, "_backoff", seen.append)
    return seen


def test_writes_go_in_batches_of_25_each_once_the_unprocessed_retried(waits: list[int]) -> None:
    client = Flaky()
    requests = [put(i) for i in range(60)]
    dynamo.write_all(client, "t", requests)
    assert max(client.calls) <= dynamo.BATCH_WRITE
    assert sorted(map(repr, client.written)) == sorted(map(repr, requests))
    assert waits and set(waits) == {0}


def test_reads_go_in_batches_of_100_and_return_every_item_once(waits: list[int]) -> None:
    client = Flaky()
    keys = [key(i) for i in range(250)]
    got = list(dynamo.get_all(client, "t", keys, "pk, g", consistent=True))
    assert max(client.calls) <= dynamo.BATCH_GET
    assert sorted(map(repr, got)) == sorted(map(repr, keys))


def test_a_batch_left_unprocessed_every_time_fails_loudly(waits: list[int]) -> None:
    with pytest.raises(RuntimeError, match="unprocessed"):
        dynamo.write_all(Flaky(give_up=True), "t", [put(1), put(2)])
    with pytest.raises(RuntimeError, match="unprocessed"):
        list(dynamo.get_all(Flaky(give_up=True), "t", [key(1)], "pk", consistent=False))
    assert waits.count(7) == 2  # eight attempts each, backing off between them


def test_nothing_to_write_or_read_makes_no_call() -> None:
    client = Flaky()
    dynamo.write_all(client, "t", [])
    assert list(dynamo.get_all(client, "t", [], "pk", consistent=False)) == []
    assert client.calls == []


def test_a_query_is_followed_page_after_page(grids: GridRepository) -> None:
    ddb, table = grids._ddb, grids._table
    items = [{"pk": {"S": "p"}, "sk": {"S": f"{i:03}"}} for i in range(30)]
    dynamo.write_all(ddb, table, [{"PutRequest": {"Item": item}} for item in items])
    kwargs = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "p"}},
        "Limit": 7,
    }
    assert [item["sk"]["S"] for item in dynamo.query_all(ddb, kwargs)] == [
        f"{i:03}" for i in range(30)
    ]
