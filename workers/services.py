"""What tasks work through: repositories and the recompute engine, built per process.

One DynamoDB client serves them all: building a boto3 client loads its service model, ~0.5 s
of CPU on a small box. The worker builds them before its pool forks (workers/tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.settings import Settings
from shared.geo.tiles import Pyramid
from shared.obs.status import FreshnessLog
from shared.store import aws
from shared.store.grids import GridRepository
from shared.store.reports import ReportRepository
from workers.pyramid import Recomputer
from workers.runlog import PointCache, RunLog


@dataclass
class Services:
    reports: ReportRepository
    grids: GridRepository
    pyramid: Pyramid
    recomputer: Recomputer
    freshness: FreshnessLog
    cache: PointCache
    """This process's reads, kept from one recompute run to its next (``workers.runlog``)."""


def build_services(settings: Settings) -> Services:
    ddb = aws.client(settings, "dynamodb", timeout=5.0, attempts=5)
    reports = ReportRepository(ddb, settings.reports_table)
    grids = GridRepository(ddb, settings.grids_table)
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    return Services(
        reports=reports,
        grids=grids,
        pyramid=pyramid,
        recomputer=Recomputer(reports, grids, pyramid, settings.privacy_rule),
        freshness=FreshnessLog(ddb, settings.grids_table),
        cache=PointCache(RunLog(ddb, settings.grids_table), settings.point_cache_reports),
    )
