"""What a recompute reads of a report, and its packed form (a report item's `pt`, a dirty
mark's `pts`): ~45 bytes a report, one attribute value instead of five."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.geo.tiles import TIME_ATOMS
from shared.model.report import Report
from shared.model.when import when


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """What density needs of a report: never the description. The id tells a report that a
    run has read from one that a later mark brings (``Recomputer.run``)."""

    lon: float
    lat: float
    category: str
    occurred_at: datetime
    id: str = ""
    unit: bool = True
    """Counts towards the privacy threshold (``shared.geo.privacy``): the first stored report of
    its submitter's pseudonym, or a report without one."""
    time: int = field(default=-1, compare=False)
    """Index into ``TIME_ATOMS`` (light and days at the report's place and time), derived once
    when it is stored; -1 for a point made without it (derived when asked: ``time_atom``).
    Not compared: it is a function of the other fields."""

    @classmethod
    def of(cls, report: Report, unit: bool = True) -> StoredPoint:
        point = cls(report.lon, report.lat, report.category, report.occurred_at, report.id, unit)
        return cls(*_fields(point), time=point.time_atom())

    def time_atom(self) -> int:
        if self.time >= 0:
            return self.time
        found = when(self.lat, self.lon, self.occurred_at)
        return TIME_ATOMS.index(f"{found.light}-{found.days}")

    @property
    def time_name(self) -> str:
        return TIME_ATOMS[self.time_atom()]


def _fields(p: StoredPoint) -> tuple[float, float, str, datetime, str, bool]:
    return (p.lon, p.lat, p.category, p.occurred_at, p.id, p.unit)


_POINT = struct.Struct("<16sddqB")
"""A packed report: id (uuid bytes), lon, lat, occurred_at (microseconds since the epoch,
exact), then the length of the category's UTF-8 name, which follows, with bit 7 set for a
report that is not a unit and bit 5 for one whose time atom follows the name as one byte
(category ids are short ASCII, so older items, all units without a time, read the same)."""
_NOT_UNIT = 0x80
_TIMED = 0x20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pack_points(points: Iterable[StoredPoint]) -> bytes:
    out = bytearray()
    for p in points:
        micros = (p.occurred_at - _EPOCH) // timedelta(microseconds=1)
        name = p.category.encode()
        flag = (0 if p.unit else _NOT_UNIT) | _TIMED
        out += _POINT.pack(uuid.UUID(p.id).bytes, p.lon, p.lat, micros, len(name) | flag) + name
        out.append(p.time_atom())
    return bytes(out)


def unpack_points(blob: bytes) -> tuple[StoredPoint, ...]:
    out = []
    at = 0
    while at < len(blob):
        raw_id, lon, lat, micros, size = _POINT.unpack_from(blob, at)
        at += _POINT.size
        unit = not size & _NOT_UNIT
        timed = size & _TIMED
        size &= ~(_NOT_UNIT | _TIMED)
        category = blob[at : at + size].decode()
        at += size
        time = -1
        if timed:
            time = blob[at]
            at += 1
        occurred = _EPOCH + timedelta(microseconds=micros)
        rid = str(uuid.UUID(bytes=raw_id))
        out.append(StoredPoint(lon, lat, category, occurred, rid, unit, time))
    return tuple(out)
