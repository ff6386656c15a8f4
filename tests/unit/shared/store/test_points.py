"""Packed points read back exactly: ids, places, microseconds, categories, the unit flag and
the time atom."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.config.categories import CATEGORY_IDS
from shared.store.points import StoredPoint, pack_points, unpack_points

points = st.builds(
    StoredPoint,
    lon=st.floats(-180, 180),
    lat=st.floats(-85, 85),
    category=st.sampled_from(sorted(CATEGORY_IDS)),
    occurred_at=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    id=st.uuids().map(str),
    unit=st.booleans(),
    time=st.integers(0, 3),
)


@given(st.lists(points, max_size=20))
def test_packed_points_read_back_as_they_were(stored: list[StoredPoint]) -> None:
    back = unpack_points(pack_points(stored))
    assert back == tuple(stored)
    assert [p.time for p in back] == [p.time for p in stored]


def test_a_point_costs_its_fixed_part_and_its_category_name() -> None:
    when = datetime(2026, 11, 30, 21, 15, 30, 123456, tzinfo=UTC)
    point = StoredPoint(-0.1, 51.5, "theft", when, str(uuid.uuid4()))
    assert len(pack_points([point])) == 16 + 8 + 8 + 8 + 1 + len("theft") + 1
    (back,) = unpack_points(pack_points([point]))
    assert back.occurred_at - when == timedelta(0) and back.unit
    # 21:15 UTC on a Monday in London, in November: after dark, a weekday.
    assert back.time_name == "dark-weekdays" and back.time == point.time_atom()


def test_points_packed_before_the_time_atom_derive_it_when_read() -> None:
    """Items written before bit 5 meant "a time byte follows" read without one, and the atom
    is derived from the place and time when asked."""
    saturday_noon = datetime(2026, 6, 6, 11, 0, tzinfo=UTC)
    point = StoredPoint(-0.1, 51.5, "theft", saturday_noon, str(uuid.uuid4()))
    old = pack_points([point])[:-1]
    old = old[:40] + bytes([old[40] & ~0x20]) + old[41:]
    (back,) = unpack_points(old)
    assert back.time == -1 and back.time_name == "daylight-weekends"


def test_points_packed_before_the_unit_flag_read_as_units() -> None:
    """Items written before bit 7 meant "not a unit" have it clear: all read as units."""
    point = StoredPoint(2.0, 1.0, "other", datetime(2026, 1, 1, tzinfo=UTC), str(uuid.uuid4()))
    blob = pack_points([point])
    assert blob[40] & 0x9F == len("other")  # the length byte, bit 7 clear
    assert unpack_points(blob)[0].unit
    assert not unpack_points(pack_points([replace(point, unit=False)]))[0].unit
