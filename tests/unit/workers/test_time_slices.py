"""The time slices through the worker: reports land in the slices of their place's light and
local day, filters on light or days alone are summed on read, and the privacy rule hides a
time slice wherever it would isolate a report."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from shared.geo.tiles import layer_key, lonlat_to_world
from tests.unit.workers.support import World, full_run_writes

LONDON = (51.5, -0.1)
SYDNEY = (-33.87, 151.21)
# Saturday 28 November 2026, 22:00 UTC: after dark at the weekend in London; Sunday 09:00 in
# Sydney (daylight, weekend). Tuesday 24 November, 12:00 UTC: daylight on a weekday in London,
# 23:00 on Tuesday in Sydney (dark, weekday).
SATURDAY_NIGHT = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _shown(world: World, place: tuple[float, float], layer: str) -> float:
    """The density the reader shows at a place's compute-zoom cell (0 where hidden)."""
    zc = world.pyramid.compute_zoom
    mx, my = lonlat_to_world(np.array([place[1]]), np.array([place[0]]))
    n = 256 << zc
    row, col = int(my[0] * n), int(mx[0] * n)
    return float(world.region(layer, zc, row, col, row + 1, col + 1)[0, 0])


def _cluster(world: World, place: tuple[float, float], at: datetime, n: int = 3) -> None:
    for i in range(n):
        world.add(place[0] + i * 0.0001, place[1], occurred_at=at)


def test_each_city_shows_only_in_its_own_slices(private_world: World) -> None:
    _cluster(private_world, LONDON, SATURDAY_NIGHT)
    _cluster(private_world, SYDNEY, TUESDAY_NOON)
    private_world.recompute()
    london = {
        (light, days): _shown(private_world, LONDON, layer_key("all", "all", light, days))
        for light in ("any", "daylight", "dark")
        for days in ("any", "weekdays", "weekends")
    }
    sydney = {
        (light, days): _shown(private_world, SYDNEY, layer_key("all", "all", light, days))
        for light in ("any", "daylight", "dark")
        for days in ("any", "weekdays", "weekends")
    }
    every = london["any", "any"]
    assert every > 0
    for (light, days), value in london.items():
        inside = light in ("any", "dark") and days in ("any", "weekends")
        assert (value == every) if inside else (value == 0), (light, days, value)
    every = sydney["any", "any"]
    assert every > 0
    for (light, days), value in sydney.items():
        inside = light in ("any", "dark") and days in ("any", "weekdays")
        assert (value == every) if inside else (value == 0), (light, days, value)
    # The category's slices too.
    assert _shown(private_world, LONDON, layer_key("harassment", "30d", "dark", "weekends")) > 0


def test_a_lone_report_at_another_time_hides_the_time_slices_near_it(
    private_world: World,
) -> None:
    """Three after dark at the weekend and one at noon on a weekday, together: the map of
    every time shows (four reports), but `any - dark` would be the lone one alone."""
    _cluster(private_world, LONDON, SATURDAY_NIGHT)
    private_world.add(LONDON[0] + 0.00015, LONDON[1], occurred_at=TUESDAY_NOON)
    private_world.recompute()
    assert _shown(private_world, LONDON, "all|all") > 0
    for light, days in [("dark", "any"), ("any", "weekends"), ("dark", "weekends")]:
        assert _shown(private_world, LONDON, layer_key("all", "all", light, days)) == 0
    for light, days in [("daylight", "any"), ("any", "weekdays")]:
        assert _shown(private_world, LONDON, layer_key("all", "all", light, days)) == 0


def test_a_recompute_leaves_nothing_to_redo(private_world: World) -> None:
    _cluster(private_world, LONDON, SATURDAY_NIGHT)
    _cluster(private_world, SYDNEY, TUESDAY_NOON, 4)
    private_world.recompute()
    assert full_run_writes(private_world) == 0
