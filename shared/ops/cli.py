"""``safetyheatmap``: the operator's command line (``safetyheatmap <command> --help``).

Where it acts: ``shared.ops.target`` (``--local``/``--aws``, else ``SAFETYHEATMAP_OPS_MODE``);
``scale`` on aws updates the ECS worker service. What each command does:
``shared/ops/commands/``.
"""

from __future__ import annotations

import argparse
import sys

from shared.config.settings import Settings
from shared.ops.commands.backup import add_backup_parsers
from shared.ops.commands.deadletters import cmd_dlq_list, cmd_dlq_redrive
from shared.ops.commands.provisioning import cmd_init, cmd_settings
from shared.ops.commands.recompute import cmd_rebuild, cmd_roll
from shared.ops.commands.reports import cmd_remove, cmd_seed
from shared.ops.commands.scale import cmd_scale
from shared.ops.commands.status import cmd_status
from shared.ops.target import STACK_FILE, OpsError, Target, resolve


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

    add_backup_parsers(sub)
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
