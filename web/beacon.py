"""The `tiles-written` item, read as one signed GetItem: the beacon of the web's tile cache.

While reads come, the web looks at this item every ``GRID_CHECK_S`` (web/grids.py), ten times a
second by default, whatever the read rate: a fixed cost the cached-read benchmark counts
against every request. web/awsjson.py makes the same call for about half of boto3's CPU
(0.53 against 1.13 ms a look; bench/send_cost.py, calls). Eventually consistent,
as boto3's GetItem was: the cache re-fetches what it fetched within ``SETTLE_S`` of a change.
"""

from __future__ import annotations

from typing import Any

from shared.store.aws import Credentials
from shared.store.keys import META_PK
from web.awsjson import AwsJson


class MetaItem:
    """Called: the value of one meta item of the grids table, or None if it was never written."""

    def __init__(self, api: AwsJson, table: str, name: str) -> None:
        self._api = api
        self._params = {"TableName": table, "Key": {"pk": {"S": META_PK}, "sk": {"S": name}}}

    def __call__(self) -> str | None:
        item = self._api.call("GetItem", self._params).get("Item")
        return str(item["value"]["S"]) if item else None


def for_client(ddb: Any, credentials: Credentials, table: str, name: str) -> MetaItem:
    """The item at the endpoint and region of a boto3 DynamoDB client (3 s timeouts)."""
    api = AwsJson(
        ddb.meta.endpoint_url,
        ddb.meta.region_name,
        "dynamodb",
        "DynamoDB_20120810",
        credentials,
        timeout_s=3.0,
    )
    return MetaItem(api, table, name)
