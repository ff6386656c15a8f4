"""What tasks work through: repositories and the recompute engine, built per process."""

from __future__ import annotations

from dataclasses import dataclass

from shared import aws
from shared.pyramid import Recomputer
from shared.settings import Settings
from shared.storage import GridRepository, ReportRepository
from shared.tiles import Pyramid


@dataclass
class Services:
    reports: ReportRepository
    grids: GridRepository
    pyramid: Pyramid
    recomputer: Recomputer


def build_services(settings: Settings) -> Services:
    ddb = aws.client(settings, "dynamodb", timeout=5.0, attempts=5)
    reports = ReportRepository(ddb, settings.reports_table)
    grids = GridRepository(ddb, settings.grids_table)
    pyramid = Pyramid(settings.bandwidth_m, settings.max_zoom)
    return Services(
        reports=reports,
        grids=grids,
        pyramid=pyramid,
        recomputer=Recomputer(reports, grids, pyramid, settings.privacy_min_reports),
    )
