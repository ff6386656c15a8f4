"""``export`` (every stored report to an NDJSON file) and ``import`` (such a file back, by id).

Export streams: the reports table is scanned page by page and written a line at a time, so
memory stays flat however many reports are stored (bench/export_memory.py: the same peak at
10k and 100k rows). Import goes through the worker's own path: it validates the whole file
first (nothing is sent if a line is wrong, and every wrong line is named), then sends
``store_reports`` task messages, which the worker stores idempotently by id and whose grids it
recomputes as for any report; importing twice stores nothing twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shared.model.backup import IMPORTED_NOT_UNIT, decode_line, encode_line
from shared.model.report import Report, ValidationError
from shared.model.taskmsg import STORE_REPORTS, celery_body
from shared.ops.progress import Progress
from shared.ops.target import OpsError, Target
from shared.store.reports import ReportRepository

BATCH = 100
"""Reports per ``store_reports`` message: ~25 kB of the 256 kB an SQS message may hold, and the
worker stores a message's reports in batch writes of 25."""
MAX_ERRORS = 20
"""Wrong lines named before the rest are only counted."""


def add_backup_parsers(sub: Any) -> None:
    """``export`` and ``import`` on the command line's sub-parsers."""
    p = sub.add_parser(
        "export",
        help="write every stored report to an NDJSON backup (private: positions; see OPERATIONS)",
        description="One line per report: id, lat, lon, category, occurred_at, received_at and "
        "unit (counted towards the privacy threshold). No pseudonym, address or description. "
        "The file is created readable by its owner only.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the backup file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import",
        help="load an export back (by id, idempotent); the workers store it and recompute grids",
        description="Checks every line first: a wrong line is named (line number and field) and "
        "nothing is imported. Then queues the reports to the workers, which store them by id "
        "(importing twice stores nothing twice) with their received_at, and recompute the grids.",
    )
    p.add_argument("file", metavar="FILE", help="a file `safetyheatmap export` wrote")
    p.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace, target: Target) -> int:
    s = target.settings
    ddb = target.client("dynamodb")
    reports = ReportRepository(ddb, s.reports_table)
    approx = int(ddb.describe_table(TableName=s.reports_table)["Table"].get("ItemCount", 0))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private data
    bar = Progress("export", approx)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            written = write_rows(reports, fh, bar)
        os.replace(tmp, out)  # a backup file is whole or absent
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    bar.set(written, written)
    print(f"exported {written} report(s) to {out}")
    return 0


def write_rows(reports: ReportRepository, fh: IO[str], bar: Progress | None = None) -> int:
    written = 0
    for row, unit in reports.backup_rows():
        fh.write(
            encode_line(
                row.id,
                row.lat,
                row.lon,
                row.category,
                row.occurred_at.isoformat(),
                row.received_at.isoformat(),
                unit,
            )
            + "\n"
        )
        written += 1
        if bar is not None and written % 1000 == 0:
            bar.set(written, max(bar.total, written))
    return written


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


def check_file(path: Path) -> tuple[int, list[str]]:
    """Lines to import and what is wrong (line number and field), reading one line at a time."""
    count, seen = 0, 0
    errors: list[str] = []
    for number, line in read_lines(path):
        count += 1
        try:
            decode_line(line)
        except ValidationError as exc:
            seen += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"line {number}: {exc.message}")
    if seen > len(errors):
        errors.append(f"... and {seen - len(errors)} more wrong line(s)")
    return count, errors


def cmd_import(args: argparse.Namespace, target: Target) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise OpsError(f"{path}: no such file")
    count, errors = check_file(path)
    if errors:
        for error in errors:
            print(f"{path}: {error}", file=sys.stderr)
        raise OpsError(f"{path}: nothing imported, fix the line(s) above")
    s = target.settings
    ddb = target.client("dynamodb")
    # Before any report: the non-units' pseudonym is claimed, so none of them becomes a unit.
    ReportRepository(ddb, s.reports_table).claim_units([_claimer()])
    sqs = target.client("sqs")
    url = target.queue_url(s.queue_name)
    bar = Progress("import", count)
    batch: list[Report] = []
    sent = 0
    for _, line in read_lines(path):
        batch.append(decode_line(line)[0])
        if len(batch) == BATCH:
            sent += _send(sqs, url, s.queue_name, batch)
            bar.set(sent, count)
            batch = []
    if batch:
        sent += _send(sqs, url, s.queue_name, batch)
    bar.set(sent, count)
    print(f"queued {sent} report(s) from {path}; the workers store them and recompute the grids")
    return 0


def _claimer() -> Report:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return Report(
        id="00000000-0000-0000-0000-000000000000",
        lat=0.0,
        lon=0.0,
        category="other",
        description="",
        occurred_at=epoch,
        received_at=epoch,
        submitter=IMPORTED_NOT_UNIT,
    )


def _send(sqs: Any, url: str, queue: str, batch: list[Report]) -> int:
    items = [{"report": r.to_message(), "request_id": "import"} for r in batch]
    body = celery_body(STORE_REPORTS, [items], queue, headers={"origin": "safetyheatmap-import"})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    return len(batch)
