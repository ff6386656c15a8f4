"""``rebuild`` (every grid from the stored reports) and ``roll`` (the rolling-windows task)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from shared.geo.tiles import Pyramid
from shared.model.taskmsg import ROLL_WINDOWS
from shared.ops.progress import Progress
from shared.ops.target import Target
from shared.store.grids import GridRepository
from shared.store.reports import ReportRepository
from workers.pyramid import Recomputer
from workers.rebuild import rebuild


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


def cmd_roll(args: argparse.Namespace, target: Target) -> int:
    target.send_task(ROLL_WINDOWS)
    print(f"queued {ROLL_WINDOWS} at {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 0
