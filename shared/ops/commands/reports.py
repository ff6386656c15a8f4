"""``seed`` (demo reports through the public API) and ``remove`` (reports deleted on request, by
id or by a selection of place, category and time; their grids recomputed)."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta

from shared.config.categories import CATEGORY_IDS
from shared.model.taskmsg import RECOMPUTE
from shared.ops import seed
from shared.ops.progress import Progress
from shared.ops.target import OpsError, Target
from shared.store.grids import GridRepository
from shared.store.reports import ReportRepository, ReportRow
from workers.removal import Selection, remove_reports, remove_rows, select_reports


def cmd_seed(args: argparse.Namespace, target: Target) -> int:
    try:
        area = seed.parse_area(args.area)
    except ValueError as exc:
        raise OpsError(str(exc)) from None
    reports = seed.plan(args.reports, area, args.seed, seed.now_utc())
    bar = Progress("seed", len(reports))
    statuses = seed.post_all(
        target.api_url, reports, concurrency=args.concurrency, progress=bar.advance
    )
    summary = ", ".join(f"{n} x {code or 'no answer'}" for code, n in sorted(statuses.items()))
    print(f"posted {len(reports)} report(s) to {target.api_url}: {summary}")
    return 0 if set(statuses) <= {202} else 1


def cmd_remove(args: argparse.Namespace, target: Target) -> int:
    selection = _selection(args, datetime.now(UTC))
    if args.ids and not selection.is_empty():
        raise OpsError("give report ids or a selection (--bbox, --category, times), not both")
    if not args.ids and selection.is_empty():
        raise OpsError("give report ids, or select reports with --bbox, --category or times")
    ids = []
    for raw in args.ids:
        try:
            ids.append(str(uuid.UUID(raw)))
        except ValueError:
            raise OpsError(f"{raw!r} is not a report id (the id a 202 answered with)") from None
    s = target.settings
    ddb = target.client("dynamodb")
    reports, grids = ReportRepository(ddb, s.reports_table), GridRepository(ddb, s.grids_table)
    if ids:
        found = remove_reports(reports, grids, ids)
    else:
        rows = select_reports(reports, selection)
        _describe_selected(rows)
        if not args.yes:
            if rows:
                print("nothing removed: run again with --yes to remove them")
            return 0
        found = remove_rows(reports, grids, rows)
    partitions = sorted({p for stored_at in found.values() for p in stored_at})
    if partitions:  # a worker recomputes them (a stopped one, once started: the marks wait)
        target.send_task(RECOMPUTE)
    missing = [rid for rid in ids if rid not in found]
    print(
        f"removed {len(found)} report(s) from {len(partitions)} partition(s)"
        + ("; their grids are being recomputed" if partitions else "")
    )
    for rid in missing:
        print(f"not found: {rid}")
    return 1 if missing else 0


def _selection(args: argparse.Namespace, now: datetime) -> Selection:
    try:
        return Selection(
            bbox=seed.parse_area(args.bbox, flag="--bbox", named=False) if args.bbox else None,
            category=_category(args.category) if args.category else None,
            received_from=_moment(args.received_from, now, "--received-from"),
            received_to=_moment(args.received_to, now, "--received-to"),
            occurred_from=_moment(args.occurred_from, now, "--occurred-from"),
            occurred_to=_moment(args.occurred_to, now, "--occurred-to"),
        )
    except ValueError as exc:
        raise OpsError(str(exc)) from None


def _category(text: str) -> str:
    if text not in CATEGORY_IDS:
        raise ValueError(f"--category: one of {', '.join(sorted(CATEGORY_IDS))}")
    return text


_AGES = {"m": 60, "h": 3600, "d": 86400}


def _moment(text: str | None, now: datetime, flag: str) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise) or an age before now: 30m, 2h, 7d."""
    if not text:
        return None
    if text[-1:] in _AGES and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * _AGES[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        hint = "an ISO 8601 time or an age (30m, 2h, 7d)"
        raise ValueError(f"{flag}: {hint}, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe_selected(rows: list[ReportRow]) -> None:
    if not rows:
        print("no stored report matches")
        return
    by_category: dict[str, int] = {}
    for row in rows:
        by_category[row.category] = by_category.get(row.category, 0) + 1
    first = min(row.received_at for row in rows).isoformat(timespec="seconds")
    last = max(row.received_at for row in rows).isoformat(timespec="seconds")
    kinds = ", ".join(f"{n} {c}" for c, n in sorted(by_category.items(), key=lambda kv: -kv[1]))
    print(f"{len(rows)} report(s) match ({kinds}), received from {first} to {last}")
