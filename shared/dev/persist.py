"""The local stack's memory: moto's DynamoDB tables saved to DATA_DIR and loaded at start.

moto server keeps everything in memory (its only persistence is a request recorder), so a
``make run`` restart used to start empty. The emulator process (shared/dev/emulator.py) saves
its DynamoDB tables here: after a change, at most every ``EVERY_S`` seconds, and at a warm stop;
it loads them before it serves. Why these choices:

- Items, not pickles: each item as DynamoDB's own JSON (``Item.to_json``), each table with its
  key schema. A pickle of moto's objects would break on a moto upgrade; this document is the
  wire format, which moto parses again through ``Table.put_item``.
- Read from moto's backend objects in the emulator process, not by a Scan through its port:
  one pass over memory, and under gevent one pass that never yields, so a snapshot is a
  consistent cut of every table without a lock (10,000 reports: see docs/BENCHMARKS.md).
- Only after a write (a WSGI wrapper marks DynamoDB's writing actions): an idle stack does not
  rewrite its file every 2 s.
- Written to a temporary file and renamed over (``os.replace``): a crash during a write leaves
  the previous snapshot whole, never a torn file.
- SQS is not saved: a warm stop lets the worker drain the queue first (shared/dev/devstack.py),
  a crash loses what was still queued or not yet saved (README: what a crash loses).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EVERY_S = 2.0
FILE = "dynamodb.json"
FORMAT = 1
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
        "CreateTable",
        "DeleteTable",
        "UpdateTable",
    }
)


def is_write(target: str) -> bool:
    """An ``X-Amz-Target`` such as ``DynamoDB_20120810.PutItem`` that may change a table."""
    service, _, action = target.partition(".")
    return service.startswith("DynamoDB_") and action in WRITES


def snapshot(backends: Any) -> dict[str, Any]:
    """Every table of every account and region of moto's ``dynamodb_backends``."""
    tables = []
    for account, regions in list(backends.items()):
        for region, backend in list(regions.items()):
            for table in list(backend.tables.values()):
                tables.append(
                    {
                        "account": account,
                        "region": region,
                        "name": table.name,
                        "schema": table.schema,
                        "attr": table.attr,
                        "billing_mode": table.billing_mode,
                        "items": [item.to_json()["Attributes"] for item in table.all_items()],
                    }
                )
    return {"format": FORMAT, "saved_at": time.time(), "tables": tables}


def restore(backends: Any, document: dict[str, Any]) -> int:
    """Recreate the saved tables and their items; returns the number of items."""
    if document.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {document.get('format')!r}")
    count = 0
    for saved in document["tables"]:
        backend = backends[saved["account"]][saved["region"]]
        table = backend.tables.get(saved["name"]) or backend.create_table(
            saved["name"],
            schema=saved["schema"],
            throughput=None,
            attr=saved["attr"],
            global_indexes=None,
            indexes=None,
            streams=None,
            billing_mode=saved["billing_mode"] or "PAY_PER_REQUEST",
            sse_specification=None,
            tags=[],
            deletion_protection_enabled=False,
            warm_throughput=None,
        )
        for attrs in saved["items"]:
            table.put_item(attrs)
            count += 1
    return count


def write_atomic(path: Path, document: dict[str, Any]) -> None:
    """Aside, flushed to disk, then renamed over: the file is the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(document, fh, separators=(",", ":"), default=_binary)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _binary(value: object) -> str:
    """moto may hold a B attribute as bytes: the wire's base64, which moto serves back as is."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot save {type(value).__name__}")


def read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


class Persister:
    """Saves ``backends`` to ``folder`` after a change (``mark``), every ``every`` seconds."""

    def __init__(self, folder: Path, backends: Any, every: float = EVERY_S) -> None:
        self.path = folder / FILE
        self.backends = backends
        self.every = every
        self._dirty = False
        self._stopped = threading.Event()

    def load(self) -> int:
        document = read(self.path)
        return 0 if document is None else restore(self.backends, document)

    def mark(self) -> None:
        self._dirty = True

    def save(self) -> None:
        self._dirty = False
        write_atomic(self.path, snapshot(self.backends))

    def save_if_changed(self) -> bool:
        if not self._dirty:
            return False
        self.save()
        return True

    def run(self) -> None:
        """The saving loop (a greenlet under the emulator's gevent worker)."""
        while not self._stopped.wait(self.every):
            self.save_if_changed()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="persist", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """The warm stop's last save."""
        self._stopped.set()
        self.save_if_changed()

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """The WSGI app, marking the snapshot stale on every DynamoDB write it is asked."""

        def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if is_write(environ.get("HTTP_X_AMZ_TARGET", "")):
                self._dirty = True
            return app(environ, start_response)

        return wrapped
