"""The time filters over the real stack: reports posted at known times in two cities show only
in their own slices, and a lone report beside a cluster of another time never shows in any
time slice, grid, tile or export, at any zoom, so `any - dark` cannot isolate it.

Distinct submitters are counted (each report from its own loopback address).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.model.when import When, when
from tests.integration.test_privacy_live import (
    around,
    export_shown_within,
    heatmap,
    offset,
    shown_within,
    tile_shown_within,
)
from tests.support import own_stack, poll, post_from

pytestmark = pytest.mark.integration

# Kansas, UTC-6 in December. Saturday 22:00 local is after dark at the weekend; Wednesday 12:00
# local is daylight on a weekday.
CLUSTER = (40.0, -100.0)
VICTIM = offset(*CLUSTER, 150, 60)
CONTROL = (40.1, -100.0)  # a cluster of the victim's time alone: its slices show
# Helsinki (UTC+2): Sunday 12:00 local is daylight at the weekend.
HELSINKI = (60.17, 24.94)
FILTERS = [
    {"light": light, "days": days}
    for light in ("any", "daylight", "dark")
    for days in ("any", "weekdays", "weekends")
    if (light, days) != ("any", "any")
]


def last(weekday: int, hour_utc: int) -> datetime:
    """The latest past instant on that UTC weekday (Monday 0) and hour, at least an hour ago."""
    now = datetime.now(UTC) - timedelta(hours=1)
    at = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    while at.weekday() != weekday or at > now:
        at -= timedelta(days=1)
    return at


SATURDAY_NIGHT = last(6, 4)  # Sunday 04:00 UTC = Saturday 22:00 in Kansas
WEDNESDAY_NOON = last(2, 18)  # Wednesday 18:00 UTC = 12:00 in Kansas
SUNDAY_NOON = last(6, 10)  # Sunday 10:00 UTC = 12:00 in Helsinki


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {
        "SAFETYHEATMAP_PRIVACY_DISTINCT_SUBMITTERS": "true",
        "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
        "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
    }
    with own_stack(tmp_path_factory.mktemp("privacy-time"), env) as s:
        s.start(workers=1)
        yield s


def post(url: str, place: tuple[float, float], at: datetime, client: str) -> None:
    body = {
        "lat": place[0],
        "lon": place[1],
        "category": "harassment",
        "occurred_at": at.isoformat(),
    }
    assert post_from(url, body, client) == 202


def test_time_slices_show_each_city_in_its_own_and_never_a_lone_report(stack: Any) -> None:
    assert when(*CLUSTER, SATURDAY_NIGHT) == When("dark", "weekends")
    assert when(*VICTIM, WEDNESDAY_NOON) == When("daylight", "weekdays")
    assert when(*HELSINKI, SUNDAY_NOON) == When("daylight", "weekends")
    url = stack.url
    for i in range(3):
        post(url, offset(*CLUSTER, 30 * i, 120 * i), SATURDAY_NIGHT, f"127.0.4.{i + 1}")
        post(url, offset(*CONTROL, 30 * i, 120 * i), WEDNESDAY_NOON, f"127.0.5.{i + 1}")
        post(url, offset(*HELSINKI, 30 * i, 120 * i), SUNDAY_NOON, f"127.0.6.{i + 1}")
    post(url, VICTIM, WEDNESDAY_NOON, "127.0.4.9")

    def near(place: tuple[float, float], metres: float = 200, **layer: str) -> float:
        return shown_within(heatmap(url, around(*place, 600), 12, **layer), *place, metres)

    # The time slices wait for the background pass: the control's own slice is the signal.
    poll(
        lambda: (
            near(CONTROL, light="daylight", days="weekdays") > 0
            and near(HELSINKI, light="daylight", days="weekends") > 0
        ),
        90,
        "the time slices of the control cluster and of Helsinki",
    )
    assert near(CLUSTER) > 0  # the map of every time shows the cluster and the victim
    for layer in FILTERS:
        inside_control = layer["light"] in ("any", "daylight") and layer["days"] in (
            "any",
            "weekdays",
        )
        inside_helsinki = layer["light"] in ("any", "daylight") and layer["days"] in (
            "any",
            "weekends",
        )
        assert (near(CONTROL, **layer) > 0) == inside_control, ("control", layer)
        assert (near(HELSINKI, **layer) > 0) == inside_helsinki, ("helsinki", layer)
        for category in ({}, {"category": "harassment"}):
            both = {**layer, **category}
            for z in range(10, 17):
                grid = heatmap(url, around(*VICTIM, 410), z, **both)
                assert shown_within(grid, *VICTIM, 400) == 0, (z, both)
            for z in (10, 12, 14, 16):
                assert tile_shown_within(url, z, *VICTIM, 400, **both) == 0, (z, both)
                exported = export_shown_within(url, around(*VICTIM, 410), z, *VICTIM, 400, **both)
                assert exported == 0, ("export", z, both)
