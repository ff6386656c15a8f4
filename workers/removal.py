"""Remove reports on request (a submitter asking for theirs to go, spam): the items go, and
the grids follow.

Grids are derived from the stored reports, so removing a report means deleting its item and
having every layer of its partition recomputed from a fresh read. A dirty mark that does not
carry its reports does exactly that (``Recomputer.run``), and the run that consumes it logs the
partition as one to read afresh, so the other worker processes forget what they had read of it
(``workers.runlog``) and none puts the report back from memory. The items go before the marks:
a run that sees a mark must not find the report. The day entries stay; at worst they make a
window roll recompute a partition that no longer holds that day's report.

Removal by id serves a submitter's request (the 202 gave them the id). A flood of spam has no
ids to hand, so reports can also be selected by area, category and time (when they were
received, or when they say it happened): :class:`Selection`, shown to the operator before
anything is removed (``safetyheatmap remove --bbox ... --received-from ...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.store.grids import GridRepository
from shared.store.reports import ReportRepository, ReportRow
from workers.layers import all_layers


def remove_reports(
    reports: ReportRepository, grids: GridRepository, report_ids: Iterable[str]
) -> dict[str, list[str]]:
    """Delete the reports and mark their partitions; returns the partitions of those found.
    The caller then sends a recompute (or a worker's next run takes the marks)."""
    found = reports.delete_many(report_ids)
    _mark(grids, found)
    return found


@dataclass(frozen=True)
class Selection:
    """Which reports to remove: all given conditions hold (bounds: from inclusive, to
    exclusive; west/south inclusive, east/north exclusive, as tiles divide the map)."""

    bbox: tuple[float, float, float, float] | None = None
    category: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def is_empty(self) -> bool:
        """No condition: it would select every report, which no removal should do by accident."""
        return self == Selection()

    def matches(self, row: ReportRow) -> bool:
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not (west <= row.lon < east and south <= row.lat < north):
                return False
        if self.category is not None and row.category != self.category:
            return False
        return _within(row.received_at, self.received_from, self.received_to) and _within(
            row.occurred_at, self.occurred_from, self.occurred_to
        )


def select_reports(reports: ReportRepository, selection: Selection) -> list[ReportRow]:
    """The stored reports the selection matches (reads the whole reports table once)."""
    if selection.is_empty():
        raise ValueError("a selection needs at least one condition")
    return [row for row in reports.rows() if selection.matches(row)]


def remove_rows(
    reports: ReportRepository, grids: GridRepository, rows: Iterable[ReportRow]
) -> dict[str, list[str]]:
    """Delete the selected reports and mark their partitions, as :func:`remove_reports`."""
    found = reports.delete_rows(rows)
    _mark(grids, found)
    return found


def _within(at: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or at >= start) and (end is None or at < end)


def _mark(grids: GridRepository, found: dict[str, list[str]]) -> None:
    partitions = {p for stored_at in found.values() for p in stored_at}
    if partitions:
        layers = set(all_layers())
        grids.mark_dirty_many({partition: layers for partition in partitions})
