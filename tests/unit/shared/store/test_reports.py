"""The reports table: each report stored once whatever the retries, the first of a pseudonym its
unit, points read packed (and from older items), removal by id or by rows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from shared.model.report import Report, report_id
from shared.store.points import StoredPoint
from shared.store.reports import ReportRepository

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HERE, THERE = "14/8185/5448", "14/8185/5449"


def report(rid: str | None = None, submitter: str = "", description: str = "") -> Report:
    return Report(rid or str(uuid.uuid4()), 51.5, -0.1, "theft", description, NOW, NOW, submitter)


def keyed() -> str:
    return report_id(uuid.uuid4().hex)


def test_store_many_writes_each_id_once_and_completes_a_half_stored_report(
    reports: ReportRepository,
) -> None:
    # Ids from an Idempotency-Key (uuid5) are guarded; random ones (uuid4) need no guard.
    a, c, b = keyed(), keyed(), str(uuid.uuid4())
    stored = reports.store_many([(report(a), HERE), (report(a), HERE), (report(b), HERE)])
    assert stored[2] and sum(stored[:2]) == 1  # an id twice in one batch: the first decides
    # The same id at another place (a retry with another body) loses to the first.
    assert reports.store_many([(report(a), THERE)]) == [False]
    assert sorted(reports.ids()) == sorted([a, b])
    assert len(reports.points(HERE)) == 2 and reports.points(THERE) == []

    # A delivery that died after its guard: the redelivery finishes the report.
    assert reports._guard(report(c), HERE) is True
    assert len(reports.points(HERE)) == 2
    assert reports.store_many([(report(c), HERE)]) == [False]
    assert len(reports.points(HERE)) == 3
    assert reports.partitions_of_day(NOW.date().isoformat()) == [HERE]

    # A redelivered random id rewrites the same item: still one report.
    reports.store_many([(report(b), HERE)])
    assert sorted(reports.ids()) == sorted([a, b, c])
    assert len(reports.points(HERE)) == 3 and reports.partitions() == [HERE]


def test_the_first_report_of_a_pseudonym_is_its_unit_and_stays_it(
    reports: ReportRepository,
) -> None:
    first, second, again = report(submitter="s1"), report(submitter="s1"), report(submitter="s1")
    anonymous, other = report(), report(submitter="s2")
    assert reports.claim_units([first, second, anonymous, other]) == [True, False, True, True]
    assert reports.claim_units([first, again]) == [True, False]  # a redelivery claims again
    claim = reports._ddb.get_item(
        TableName=reports._table, Key={"pk": {"S": "sub#s1"}, "sk": {"S": "sub"}}
    )["Item"]
    assert set(claim) == {"pk", "sk", "rid"} and claim["rid"]["S"] == first.id


def test_points_carry_the_unit_and_never_the_description(reports: ReportRepository) -> None:
    counted, not_counted = report(description="secret text"), report()
    reports.store_many([(counted, HERE), (not_counted, HERE)], units=[True, False])
    got = {p.id: p for p in reports.points(HERE)}
    assert got[counted.id] == StoredPoint.of(counted) and not got[not_counted.id].unit
    assert "secret" not in repr(got) and "secret" not in repr(list(reports.rows()))


def test_points_read_packed_and_items_stored_without_them_still_count(
    reports: ReportRepository,
) -> None:
    when = datetime(2026, 11, 30, 21, 15, 30, 123456, tzinfo=UTC)
    new = replace(report(), occurred_at=when)
    reports.store_many([(new, HERE)])
    expected = StoredPoint(-0.1, 51.5, "theft", when, new.id)
    assert reports.points(HERE) == [expected]
    # An item written before reports carried `pt`: the partition is read attribute by attribute.
    old = str(uuid.uuid4())
    item = {k: v for k, v in ReportRepository._item(new, HERE).items() if k != "pt"}
    item["sk"] = {"S": old}
    reports._ddb.put_item(TableName=reports._table, Item=item)
    got = sorted(reports.points(HERE), key=lambda p: p.id)
    assert got == sorted([expected, replace(expected, id=old)], key=lambda p: p.id)
    assert reports.points_many([HERE, THERE]) == {HERE: reports.points(HERE), THERE: []}


def test_removal_by_id_takes_the_guard_too_and_says_where_each_was(
    reports: ReportRepository,
) -> None:
    guarded, plain, kept = report(keyed()), report(), report()
    reports.store_many([(guarded, HERE), (plain, THERE), (kept, HERE)])
    assert reports.partition_of_id(guarded.id) == HERE  # by its guard
    assert reports.partition_of_id(plain.id) == THERE  # by a scan
    assert reports.delete_many([guarded.id, plain.id, str(uuid.uuid4())]) == {
        guarded.id: [HERE],
        plain.id: [THERE],
    }
    assert reports.ids() == [kept.id] and reports.partition_of_id(guarded.id) is None
    # Its guard went with it: the same key stores the report anew.
    assert reports.store_many([(guarded, HERE)]) == [True]


def test_rows_show_place_category_and_times_and_remove_exactly_those(
    reports: ReportRepository,
) -> None:
    spam, kept = [report(keyed()) for _ in range(3)], report()
    reports.store_many([(r, HERE) for r in spam] + [(kept, THERE)])
    rows = [row for row in reports.rows() if row.partition == HERE]
    assert sorted(row.id for row in rows) == sorted(r.id for r in spam)
    assert {(r.lon, r.lat, r.category, r.received_at) for r in rows} == {(-0.1, 51.5, "theft", NOW)}
    assert reports.delete_rows(rows) == {r.id: [HERE] for r in rows}
    assert reports.ids() == [kept.id]
    assert reports.store_many([(spam[0], HERE)]) == [True]  # the guards went too
