"""A step's reports as arrays, made once per step and recompute call: every layer of the step
and its privacy masks read them (one walk over the reports, not one a layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import TIME_ATOMS, WINDOWS, parse_layer
from shared.store.points import StoredPoint
from workers.plan import Planner, Step

CATEGORIES = sorted(CATEGORY_IDS)
CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}


@dataclass(frozen=True)
class StepPoints:
    """A step's reports as arrays: position, category (index into the sorted ids), the
    shortest window that holds it (index into WINDOWS), unit weight (``shared.geo.privacy``),
    time atom (index into TIME_ATOMS)."""

    lon: np.ndarray
    lat: np.ndarray
    cat: np.ndarray
    ring: np.ndarray
    unit: np.ndarray
    time: np.ndarray


class StepReports:
    """The reports of each step's partitions, from `points` (by partition) as of `now`.

    Made anew for each recompute call: the points may have changed since the last."""

    def __init__(
        self, planner: Planner, points: dict[str, list[StoredPoint]], now: datetime
    ) -> None:
        self._planner = planner
        self._points = points
        self._now = now
        self._arrays: dict[Step, StepPoints] = {}

    def arrays(self, step: Step) -> StepPoints:
        known = self._arrays.get(step)
        if known is not None:
            return known
        spans = list(WINDOWS.values())
        now = self._now
        chosen = [p for key in self._planner.partitions([step]) for p in self._points.get(key, ())]
        arrays = StepPoints(
            np.fromiter((p.lon for p in chosen), np.float64, len(chosen)),
            np.fromiter((p.lat for p in chosen), np.float64, len(chosen)),
            np.fromiter((CATEGORY_INDEX[p.category] for p in chosen), np.intp, len(chosen)),
            np.fromiter((_ring(p.occurred_at, now, spans) for p in chosen), np.intp, len(chosen)),
            np.fromiter((p.unit for p in chosen), np.int64, len(chosen)),
            np.fromiter((p.time_atom() for p in chosen), np.intp, len(chosen)),
        )
        self._arrays[step] = arrays
        return arrays

    def of_layer(self, layer: str, step: Step) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Longitudes, latitudes and unit weights of the step's reports in one layer."""
        parsed = parse_layer(layer)
        arrays = self.arrays(step)
        keep = arrays.ring <= list(WINDOWS).index(parsed.window)
        if parsed.category != ALL:
            keep &= arrays.cat == CATEGORY_INDEX[parsed.category]
        if parsed.timed:
            keep &= arrays.time == TIME_ATOMS.index(f"{parsed.light}-{parsed.days}")
        return arrays.lon[keep], arrays.lat[keep], arrays.unit[keep]


def _ring(occurred_at: datetime, now: datetime, spans: list[timedelta | None]) -> int:
    """Index of the shortest window that holds a report."""
    for i, span in enumerate(spans):
        if span is None or occurred_at >= now - span:
            return i
    return len(spans) - 1
