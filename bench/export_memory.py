"""Peak memory of ``safetyheatmap export`` against the number of stored reports.

    .venv/bin/python bench/export_memory.py [ROWS ...]      (default: 10000 100000)

Each size runs in a fresh process: the export's own code (``ReportRepository.backup_rows`` and
``shared.ops.commands.backup.write_rows``) reads a stand-in DynamoDB client that serves the
reports table as a real Scan does (pages of 1,000 items with a ``LastEvaluatedKey``, items
built as the worker stores them) and writes the NDJSON file to a temporary directory. Printed:
tracemalloc's peak of Python allocations during the export and the process's peak RSS
(ru_maxrss). Flat memory means the same peaks whatever the row count.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/export_memory.py` from a checkout
    sys.path.insert(0, str(ROOT))

from shared.model.report import Report  # noqa: E402
from shared.ops.commands.backup import write_rows  # noqa: E402
from shared.store.reports import ReportRepository  # noqa: E402

PAGE = 1000


class PagedTable:
    """The reports table's Scan: ``rows`` items, built a page at a time as they are asked for."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        start = int(kwargs.get("ExclusiveStartKey", {"n": {"N": "0"}})["n"]["N"])
        end = min(start + PAGE, self.rows)
        page: dict[str, Any] = {"Items": [self._item(i) for i in range(start, end)]}
        if end < self.rows:
            page["LastEvaluatedKey"] = {"n": {"N": str(end)}}
        return page

    def _item(self, i: int) -> dict[str, Any]:
        report = Report(
            id=str(uuid.UUID(int=i + 1, version=4)),
            lat=51.5 + (i % 997) * 1e-5,
            lon=-0.12 + (i % 991) * 1e-5,
            category="theft",
            description="",
            occurred_at=self.now - timedelta(seconds=i),
            received_at=self.now - timedelta(seconds=i - 1),
        )
        return ReportRepository._item(report, "15/16373/10895", unit=i % 3 != 0)


def measure(rows: int) -> dict[str, float]:
    repo = ReportRepository(PagedTable(rows), "reports")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tracemalloc.start()
        with (Path(folder) / "backup.ndjson").open("w") as fh:
            written = write_rows(repo, fh)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        seconds = time.perf_counter() - started
    assert written == rows
    return {
        "rows": rows,
        "tracemalloc_peak_kib": round(peak / 1024),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure(int(argv[1]))))
        return
    for rows in [int(a) for a in argv] or [10_000, 100_000]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(rows)], check=True, capture_output=True
        )
        r = json.loads(out.stdout)
        print(
            f"{r['rows']:>9} rows: tracemalloc peak {r['tracemalloc_peak_kib']} KiB, "
            f"peak RSS {r['max_rss_mib']} MiB, {r['seconds']} s"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
