"""``safetyheatmap``: the operator's command line (``safetyheatmap <command> --help``).

Where it acts (``--local``/``--aws``, else ``SAFETYHEATMAP_OPS_MODE``, default ``auto``):

- local: the running ``make run`` stack, found through ``.run/stack.json`` (its emulator, its web
  URL, its worker processes); ``auto`` picks it whenever that stack is up;
- aws: the same ``SAFETYHEATMAP_*`` settings the services use (queue and table names, region;
  an endpoint override such as compose's emulator is honoured); ``scale`` updates the ECS
  worker service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from shared.config.categories import CATEGORY_IDS
from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.model.taskmsg import RECOMPUTE, ROLL_WINDOWS, celery_body
from shared.obs.status import StatusReader
from shared.ops import seed
from shared.ops.dlq import list_letters, redrive
from shared.store import aws
from shared.store.provision import provision
from shared.store.storage import GridRepository, ReportRepository, ReportRow
from workers.pyramid import Recomputer
from workers.rebuild import rebuild
from workers.removal import Selection, remove_reports, remove_rows, select_reports

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / ".run" / "stack.json"


class OpsError(RuntimeError):
    """A command cannot do what was asked; the message says why (exit status 1)."""


# --- where commands act ------------------------------------------------------------------------
@dataclass
class Target:
    mode: str
    settings: Settings
    api_url: str
    stack_file: Path | None = None

    def client(self, service: str) -> Any:
        return aws.client(self.settings, service)

    def queue_url(self, name: str) -> str:
        url: str = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        return url

    def state(self) -> dict[str, Any]:
        assert self.stack_file is not None
        data: dict[str, Any] = json.loads(self.stack_file.read_text())
        return data


def running_stack(path: Path) -> dict[str, Any] | None:
    """The state of a live ``make run`` stack, or None (no file, or its process is gone)."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def resolve(args: argparse.Namespace, settings: Settings) -> Target:
    mode = args.mode or settings.ops_mode
    stack_file = Path(args.stack)
    state = running_stack(stack_file) if mode in ("auto", "local") else None
    if mode == "local" and state is None:
        raise OpsError(f"no running `make run` stack ({stack_file} missing or its process gone)")
    if state is not None:
        local = settings.replace(aws_endpoint_url=state["moto_url"])
        return Target("local", local, args.url or state["url"], stack_file)
    url = args.url or f"http://{settings.host}:{settings.port}"
    return Target("aws", settings, url)


# --- output helpers ------------------------------------------------------------------------------
class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def advance(self, n: int = 1) -> None:
        self.set(self.done + n, self.total)

    def set(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        fraction = done / total if total else 1.0
        elapsed = time.monotonic() - self.started
        if self._tty:
            bar = "#" * int(fraction * 30)
            self.stream.write(
                f"\r{self.label} [{bar:<30}] {done}/{total} {fraction:4.0%} {elapsed:5.1f}s"
            )
            if done >= total:
                self.stream.write("\n")
        elif int(fraction * 10) != self._last_tenth:
            self._last_tenth = int(fraction * 10)
            self.stream.write(f"{self.label}: {done}/{total} ({fraction:.0%}, {elapsed:.1f}s)\n")
        self.stream.flush()


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _count(value: int | None, cap: int = 100) -> str:
    return "-" if value is None else f"{value}+" if value >= cap else str(value)


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


# --- commands ------------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace, target: Target) -> int:
    print(json.dumps(provision(target.settings), indent=2))
    return 0


def cmd_settings(args: argparse.Namespace, target: Target) -> int:
    for name, default, doc in target.settings.describe():
        print(f"{name}={default}\n    {doc}")
    return 0


def worker_count(target: Target) -> str:
    if target.mode == "local":
        state = target.state()
        running = state.get("workers")
        if running is None:
            running = sum(1 for name in state.get("processes", {}) if name.startswith("worker"))
        return f"{running} local worker process(es)"
    s = target.settings
    try:
        found = target.client("ecs").describe_services(
            cluster=s.ecs_cluster, services=[s.ecs_worker_service]
        )["services"]
    except Exception as exc:  # an operator without ECS rights still gets the rest
        return f"unknown ({type(exc).__name__})"
    if not found:
        return "unknown (no ECS service)"
    return f"{found[0]['runningCount']} running, {found[0]['desiredCount']} desired (ECS)"


def cmd_status(args: argparse.Namespace, target: Target) -> int:
    reader = StatusReader(target.client("sqs"), target.client("dynamodb"), target.settings)
    status = reader.collect()
    status["workers"] = worker_count(target)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    q, d, f = status.get("queue"), status.get("dlq"), status.get("freshness")
    age = status.get("last_computed_age_s")
    rows = [
        ("where", f"{target.mode}  {target.api_url}"),
        ("at", status["at"]),
        (
            "queue (messages)",
            f"{q['visible']} visible, {q['in_flight']} in flight, {q['delayed']} delayed"
            if q
            else "unavailable",
        ),
        (
            "dead-letter queue",
            f"{d['visible'] + d['in_flight']} message(s)" if d else "unavailable",
        ),
        (
            "last grid computation",
            f"{status['last_computed_at']} ({age:.1f} s ago)" if age is not None else "never",
        ),
        ("dirty partitions", _count(status.get("dirty_partitions"))),
        (
            f"freshness, last {f['window_minutes']} min" if f else "freshness",
            f"p50 {_seconds(f['p50_ms'])}, p95 {_seconds(f['p95_ms'])} over {f['reports']} reports"
            if f
            else "unavailable",
        ),
        ("workers", status["workers"]),
    ]
    print(table(rows))
    return 0 if not status["unavailable"] else 1


def cmd_scale(args: argparse.Namespace, target: Target) -> int:
    wanted = args.workers
    if wanted < 0:
        raise OpsError("--workers must be 0 or more")
    if target.mode == "aws":
        s = target.settings
        service = target.client("ecs").update_service(
            cluster=s.ecs_cluster, service=s.ecs_worker_service, desiredCount=wanted
        )["service"]
        print(
            f"ECS service {s.ecs_worker_service}: desired {service['desiredCount']} "
            f"(running {service['runningCount']}). The queue scaler may raise it again while "
            "messages wait; see docs/OPERATIONS.md."
        )
        return 0
    assert target.stack_file is not None
    control = target.stack_file.with_name("control.json")
    tmp = control.with_suffix(".tmp")
    tmp.write_text(json.dumps({"workers": wanted}))
    tmp.replace(control)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not control.exists() and target.state().get("workers") == wanted:
            print(f"{wanted} worker process(es) running")
            return 0
        time.sleep(0.2)
    raise OpsError(f"the stack did not reach {wanted} worker(s) within {args.timeout:.0f}s")


def cmd_dlq_list(args: argparse.Namespace, target: Target) -> int:
    letters = list_letters(
        target.client("sqs"), target.queue_url(target.settings.dlq_name), args.limit
    )
    if args.json:
        print(json.dumps([vars(letter) for letter in letters], indent=2))
        return 0
    if not letters:
        print("the dead-letter queue is empty")
        return 0
    header = f"{'message id':<36}  {'task':<30} {'sent at':<25} recv retr reports  first report"
    print(header)
    for m in letters:
        first = m.report_ids[0] if m.report_ids else "-"
        print(
            f"{m.message_id:<36}  {m.task:<30} {m.sent_at:<25} "
            f"{m.receives:>4} {m.retries:>4} {m.reports:>7}  {first}"
        )
    return 0


def cmd_dlq_redrive(args: argparse.Namespace, target: Target) -> int:
    s = target.settings
    sqs = target.client("sqs")
    dlq_url, queue_url = target.queue_url(s.dlq_name), target.queue_url(s.queue_name)
    depth = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    total = min(int(depth), args.limit) if args.limit else int(depth)
    bar = Progress("redrive", total)
    moved = redrive(sqs, dlq_url, queue_url, limit=args.limit, progress=bar.advance)
    print(f"moved {moved} message(s) from {s.dlq_name} back to {s.queue_name}")
    return 0


def cmd_rebuild(args: argparse.Namespace, target: Target) -> int:
    s = target.settings
    ddb = target.client("dynamodb")
    reports = ReportRepository(ddb, s.reports_table)
    grids = GridRepository(ddb, s.grids_table)
    recomputer = Recomputer(reports, grids, Pyramid(s.bandwidth_m, s.max_zoom), s.privacy_rule)
    bar = Progress("rebuild (partitions)", 0)
    result = rebuild(reports, grids, recomputer, lease_s=s.task_time_limit + 5, progress=bar.set)
    print(
        f"rebuilt {result.partitions} partition(s): {result.tiles} tile(s) written "
        f"in {result.seconds:.1f}s"
    )
    return 0


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


def cmd_roll(args: argparse.Namespace, target: Target) -> int:
    s = target.settings
    body = celery_body(ROLL_WINDOWS, [], s.queue_name)
    target.client("sqs").send_message(QueueUrl=target.queue_url(s.queue_name), MessageBody=body)
    print(f"queued {ROLL_WINDOWS} at {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 0


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
        body = celery_body(RECOMPUTE, [], s.queue_name)
        target.client("sqs").send_message(QueueUrl=target.queue_url(s.queue_name), MessageBody=body)
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


# --- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safetyheatmap",
        description="Operate SafetyHeatmap. Settings come from SAFETYHEATMAP_* variables; "
        "see `safetyheatmap settings` and docs/OPERATIONS.md.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        dest="mode",
        action="store_const",
        const="local",
        help="act on the running `make run` stack",
    )
    where.add_argument(
        "--aws",
        dest="mode",
        action="store_const",
        const="aws",
        help="act on what the settings name (AWS, or their endpoint override)",
    )
    parser.add_argument(
        "--stack", default=str(STACK_FILE), help="state file of `make run` (default: %(default)s)"
    )
    parser.add_argument(
        "--url", help="public API base URL (default: the local stack's, or HOST:PORT)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    p = sub.add_parser("init", help="create the queue, its DLQ and the tables (idempotent)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("settings", help="list every setting with its default and meaning")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser(
        "status", help="queue and DLQ depth, last grid computation, freshness lag, workers"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "scale",
        help="set the number of workers (local processes, or the ECS service's desired count)",
        description="0 workers is allowed: reports are still acknowledged and wait in the queue.",
    )
    p.add_argument("--workers", type=int, required=True, metavar="N", help="workers wanted")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="local: seconds to wait (default 120)"
    )
    p.set_defaults(func=cmd_scale)

    p = sub.add_parser("dlq", help="inspect or redrive the dead-letter queue")
    dlq = p.add_subparsers(dest="dlq_command", required=True, metavar="<list|redrive>")
    q = dlq.add_parser("list", help="show dead letters (ids and counts only; moves nothing)")
    q.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=cmd_dlq_list)
    q = dlq.add_parser("redrive", help="move dead letters back to the queue (retries reset)")
    q.add_argument("--limit", type=int, default=None, help="at most this many (default: all)")
    q.set_defaults(func=cmd_dlq_redrive)

    p = sub.add_parser(
        "rebuild", help="recompute every grid from the stored reports (progress on stderr)"
    )
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("seed", help="post realistic demo reports through the public API")
    p.add_argument("--reports", type=int, required=True, metavar="N", help="how many")
    p.add_argument(
        "--area",
        default="london",
        help="london, paris, nyc, berlin, or minLon,minLat,maxLon,maxLat (default london)",
    )
    p.add_argument("--seed", type=int, default=1, help="same seed, same reports (default 1)")
    p.add_argument("--concurrency", type=int, default=8, help="parallel posts (default 8)")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("roll", help="queue the rolling-windows task (what the schedule sends)")
    p.set_defaults(func=cmd_roll)

    p = sub.add_parser(
        "remove",
        help="delete reports by id, or by area and time (spam); their grids are recomputed",
        description="Deletes each report (and its Idempotency-Key record), marks its partition "
        "for a fresh read and queues a recompute. Give report ids (a submitter's request), or "
        "select reports with --bbox, --category and times (a flood of spam): a selection is "
        "only shown unless --yes is given. Either way the whole reports table is read once. "
        "Exit status 1 if an id was not found.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="report id, as the 202 answered it")
    p.add_argument(
        "--bbox",
        help="minLon,minLat,maxLon,maxLat: reports inside (write --bbox=-0.13,... when it starts "
        "with a minus)",
    )
    p.add_argument("--category", help="reports of this category")
    for when, what in (("received", "the service received"), ("occurred", "the report says")):
        p.add_argument(
            f"--{when}-from",
            metavar="TIME",
            help=f"reports {what} at or after TIME: ISO 8601 (UTC unless it says) or an age "
            "before now (30m, 2h, 7d)",
        )
        p.add_argument(f"--{when}-to", metavar="TIME", help=f"reports {what} before TIME")
    p.add_argument("--yes", action="store_true", help="remove the selected reports")
    p.set_defaults(func=cmd_remove)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        target = (
            Target("aws", settings, "")
            if args.command in ("settings", "init") and args.mode is None
            else resolve(args, settings)
        )
        return int(args.func(args, target))
    except OpsError as exc:
        print(f"safetyheatmap: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
