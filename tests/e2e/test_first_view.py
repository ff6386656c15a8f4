"""The page's first view over a stack of its own: the world and the first-report message while
there are no reports, then the densest of two seeded cities; the download link follows the view.

A stack of its own because the shared one holds other tests' clusters, and the first view
depends on every report stored.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.conftest import OpenPage, expect
from tests.support import LiveStack, own_stack, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DENSE = (38.7223, -9.1393)  # Lisbon: more reports
SPARSE = (60.1699, 24.9384)  # Helsinki: enough to show, fewer


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    env = {
        "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
        "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
        "SAFETYHEATMAP_RATE_LIMIT_PER_MINUTE": "0",
    }
    with own_stack(tmp_path_factory.mktemp("firstview"), env) as s:
        s.start(workers=1)
        yield LiveStack(s)


def query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def download_href(page: Any) -> dict[str, str]:
    link = page.get_by_role("link", name="Download this view")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href.startswith("/api/safetyheatmap/heatmap/export?")
    return {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}


def test_without_reports_the_world_and_how_to_add_the_first(
    fresh: LiveStack, open_page: Any
) -> None:
    opened: OpenPage = open_page(f"{fresh.url}/")
    page = opened.page
    message = page.get_by_role("status").filter(has_text="No reports yet")
    expect(message).to_be_visible()
    expect(message.get_by_role("link", name="the report form")).to_have_attribute("href", "#report")
    poll(lambda: query(page).get("z") == "2", 10, "the world view in the URL")
    opened.problems.check()


def test_with_reports_opens_at_the_denser_city(fresh: LiveStack, open_page: Any) -> None:
    rng = random.Random(23)
    for (lat, lon), count in ((DENSE, 12), (SPARSE, 4)):
        for _ in range(count):
            body = {
                "lat": lat + rng.uniform(-0.0005, 0.0005),
                "lon": lon + rng.uniform(-0.0005, 0.0005),
                "category": "harassment",
            }
            assert fresh.post_report(body).status_code == 202

    def opening() -> Any:
        # The web keeps the summary ~30 s per process: a deadline well past that.
        got = requests.get(f"{fresh.url}/api/safetyheatmap/summary", timeout=10).json()["open"]
        return got if got and abs(got["lat"] - DENSE[0]) < 0.01 else None

    where = poll(opening, 120, "the summary at the denser city", interval=1.0)
    assert abs(where["lon"] - DENSE[1]) < 0.01

    opened: OpenPage = open_page(f"{fresh.url}/")
    page = opened.page
    poll(lambda: "lat" in query(page), 10, "the view in the URL")
    view = query(page)
    assert abs(float(view["lat"]) - DENSE[0]) < 0.01 and abs(float(view["lon"]) - DENSE[1]) < 0.01
    expect(page.get_by_text("No reports yet")).to_have_count(0)

    # The download link names the current view's bbox and layer, and follows them.
    first = download_href(page)
    west, south, east, north = (float(v) for v in first["bbox"].split(","))
    assert west < DENSE[1] < east and south < DENSE[0] < north
    assert first["format"] == "geojson"
    assert (first["category"], first["window"]) == (view["category"], view["window"])
    page.locator(".leaflet-container").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    poll(lambda: download_href(page)["bbox"] != first["bbox"], 10, "the link to follow a pan")
    page.get_by_label("Show on map").select_option("harassment")
    poll(lambda: download_href(page)["category"] == "harassment", 10, "the link's category")
    opened.problems.check()
