"""Request units and costs for bench/ingest.py (a helper, not a benchmark): DynamoDB's item
sizes and on-demand units as bench/ingest.py's docstring states them, what one report or pass
cost, and the meter that books them."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Item = dict[str, dict[str, Any]]  # a DynamoDB item, typed attribute values


# --- request units -------------------------------------------------------------------------------
def value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "B":
        return len(v)
    if kind == "N":
        return number_size(v)
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "L":  # 3 bytes of overhead plus each element, as DynamoDB counts lists
        return 3 + sum(1 + value_size(e) for e in v)
    raise ValueError(f"no size for {kind}")


def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one (AWS's own approximation)."""
    mantissa = text.lower().lstrip("+-").split("e")[0].replace(".", "")
    digits = len(mantissa.strip("0")) or 1
    return math.ceil(digits / 2) + 1


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def wru(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def rru(size: int) -> float:
    """Eventually consistent (the default of GetItem, BatchGetItem and Query): half units."""
    return max(1, math.ceil(size / 4096)) / 2


@dataclass
class Cost:
    """What one report (or one overview pass) cost; floats, as passes are shared out."""

    ms: float = 0.0
    tiles_written: float = 0.0
    tiles_read: float = 0.0
    reports_read: float = 0.0
    rru: float = 0.0
    wru: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def total_wru(self) -> float:
        return sum(self.wru.values())

    def add(self, other: Cost, share: float = 1.0) -> None:
        self.ms += other.ms * share
        self.tiles_written += other.tiles_written * share
        self.tiles_read += other.tiles_read * share
        self.reports_read += other.reports_read * share
        self.rru += other.rru * share
        for kind, units in other.wru.items():
            self.wru[kind] += units * share


class Meter:
    """Where request units go: `target`, which switches to the overview bucket once an overview
    pass begins inside a run; `base` is the run's own account (the lease it releases)."""

    def __init__(self) -> None:
        self.base = Cost()
        self.target = self.base
        self.bucket = Cost()  # the overview pass under way, with its delayed runs
        self._overview_t0: float | None = None

    def start(self, cost: Cost) -> None:
        self.base = self.target = cost

    def overview_begins(self) -> None:
        if self.target is not self.bucket:
            self.target = self.bucket
            self._overview_t0 = time.perf_counter()

    def take_overview_ms(self) -> float:
        """Milliseconds since the overview began, now booked to the bucket."""
        if self._overview_t0 is None:
            return 0.0
        ms = (time.perf_counter() - self._overview_t0) * 1000
        self._overview_t0 = None
        self.bucket.ms += ms
        return ms

    def write(self, kind: str, size: int, to: Cost | None = None) -> None:
        (self.target if to is None else to).wru[kind] += wru(size)

    def failed(self, kind: str) -> None:
        self.target.wru[kind] += 1

    def read(self, units: float) -> None:
        self.target.rru += units


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
