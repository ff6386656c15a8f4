"""Packed points read back exactly: ids, places, microseconds, categories and the unit flag."""

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
)


@given(st.lists(points, max_size=20))
def test_packed_points_read_back_as_they_were(stored: list[StoredPoint]) -> None:
    assert unpack_points(pack_points(stored)) == tuple(stored)


def test_a_point_costs_its_fixed_part_and_its_category_name() -> None:
    when = datetime(2026, 11, 30, 21, 15, 30, 123456, tzinfo=UTC)
    point = StoredPoint(-0.1, 51.5, "theft", when, str(uuid.uuid4()))
    assert len(pack_points([point])) == 16 + 8 + 8 + 8 + 1 + len("theft")
    (back,) = unpack_points(pack_points([point]))
    assert back.occurred_at - when == timedelta(0) and back.unit


def test_points_packed_before_the_unit_flag_read_as_units() -> None:
    """Items written before bit 7 meant "not a unit" have it clear: all read as units."""
    point = StoredPoint(2.0, 1.0, "other", datetime(2026, 1, 1, tzinfo=UTC), str(uuid.uuid4()))
    blob = pack_points([point])
    assert blob[40] == len("other")  # the length byte, bit 7 clear
    assert unpack_points(blob)[0].unit
    assert not unpack_points(pack_points([replace(point, unit=False)]))[0].unit
