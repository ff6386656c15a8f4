"""Remove reports on request (a submitter asking for theirs to go, spam): the items go, and
the grids follow.

Grids are derived from the stored reports, so removing a report means deleting its item and
having every layer of its partition recomputed from a fresh read. A dirty mark that does not
carry its reports does exactly that (``Recomputer.run``), and the run that consumes it logs the
partition as one to read afresh, so the other worker processes forget what they had read of it
(``shared.runlog``) and none puts the report back from memory. The items go before the marks:
a run that sees a mark must not find the report. The day entries stay; at worst they make a
window roll recompute a partition that no longer holds that day's report.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.pyramid import all_layers
from shared.storage import GridRepository, ReportRepository


def remove_reports(
    reports: ReportRepository, grids: GridRepository, report_ids: Iterable[str]
) -> dict[str, list[str]]:
    """Delete the reports and mark their partitions; returns the partitions of those found.
    The caller then sends a recompute (or a worker's next run takes the marks)."""
    found = reports.delete_many(report_ids)
    partitions = {p for stored_at in found.values() for p in stored_at}
    if partitions:
        layers = set(all_layers())
        grids.mark_dirty_many({partition: layers for partition in partitions})
    return found
