"""DynamoDB calls as the repositories make them: paged queries, batch writes and batch reads
split into requests of the sizes DynamoDB allows and run concurrently (a recompute waits on
round trips, not on CPU), unprocessed items retried with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

BATCH_GET = 100
"""Keys per BatchGetItem, DynamoDB's limit."""
BATCH_WRITE = 25
"""Requests per BatchWriteItem, DynamoDB's limit."""
PARALLEL = 8
"""Requests in flight at once, per call."""
_ATTEMPTS = 8


def conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def query_all(ddb: Any, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, page after page."""
    while True:
        page = ddb.query(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs = kwargs | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def write_all(ddb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    """Put and delete requests in batches of 25, concurrently."""
    chunks = [requests[i : i + BATCH_WRITE] for i in range(0, len(requests), BATCH_WRITE)]
    list(parallel(lambda chunk: _batch_write(ddb, table, chunk), chunks))


def get_all(
    ddb: Any, table: str, keys: list[dict[str, Any]], projection: str, *, consistent: bool
) -> Iterator[dict[str, Any]]:
    """The items of `keys` that exist, in batches of 100 keys, concurrently."""
    chunks = [keys[i : i + BATCH_GET] for i in range(0, len(keys), BATCH_GET)]
    for items in parallel(
        lambda chunk: _batch_get(ddb, table, chunk, projection, consistent), chunks
    ):
        yield from items


def parallel(func: Callable[[Any], Any], chunks: list[Any]) -> Iterator[Any]:
    """`func` of each chunk, in order; one chunk runs in the calling thread."""
    if len(chunks) <= 1:
        yield from map(func, chunks)
        return
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        yield from pool.map(func, chunks)


def _batch_write(ddb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: requests}
    for attempt in range(_ATTEMPTS):
        page = ddb.batch_write_item(RequestItems=pending)
        pending = page.get("UnprocessedItems") or {}
        if not pending:
            return
        _backoff(attempt)
    raise RuntimeError("DynamoDB left writes unprocessed after retries")


def _batch_get(
    ddb: Any, table: str, keys: list[dict[str, Any]], projection: str, consistent: bool
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        table: {"Keys": keys, "ProjectionExpression": projection, "ConsistentRead": consistent}
    }
    for attempt in range(_ATTEMPTS):
        page = ddb.batch_get_item(RequestItems=request)
        found.extend(page["Responses"].get(table, []))
        request = page.get("UnprocessedKeys") or {}
        if not request:
            return found
        _backoff(attempt)
    raise RuntimeError("DynamoDB left keys unprocessed after retries")


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 1.0))
