"""The page in a real browser over the real stack: report, heatmap, filters, layouts.

Each scenario uses its own place, far from the clusters of tests/integration, so that the tests
can share one stack in any order.
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OpenPage, expect
from tests.support import LiveStack, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# A cluster of poor-lighting reports from 20 days ago: inside "30d", outside "7d".
CLUSTER = (59.9139, 10.7522)  # Oslo
CLUSTER_CATEGORY = "poor_lighting"
CLUSTER_AGE = timedelta(days=20)
CLUSTER_SIZE = 8
CLUSTER_ZOOM = 14


def view_url(stack: LiveStack, lat: float, lon: float, zoom: int, **filters: str) -> str:
    query = f"lat={lat}&lon={lon}&z={zoom}"
    for key, value in filters.items():
        query += f"&{key}={value}"
    return f"{stack.url}/?{query}"


def no_horizontal_scroll(page: Any) -> None:
    width, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width <= client, f"the page scrolls sideways: {width} > {client}"


def described_by(page: Any, locator: Any) -> str:
    """Text of the elements a control names in aria-describedby: where its error is shown."""
    ids = (locator.get_attribute("aria-describedby") or "").split()
    return " | ".join(page.locator(f'[id="{i}"]').inner_text() for i in ids)


def click_map_centre(page: Any) -> None:
    """A click (tap) on the middle of the map, scrolled into view first."""
    box = page.locator(".leaflet-container").bounding_box()
    page.locator(".leaflet-container").click(
        position={"x": box["width"] / 2, "y": box["height"] / 2}
    )


HEAT_AT_CENTRE = """
([category, window]) => {
  // Alpha of the heatmap tile pixel under the centre of the map, once that tile has loaded
  // with the expected filters; null while it is loading.
  const map = document.querySelector('.leaflet-container').getBoundingClientRect();
  const x = map.left + map.width / 2, y = map.top + map.height / 2;
  for (const img of document.querySelectorAll('.heatmap-layer img.leaflet-tile')) {
    const r = img.getBoundingClientRect();
    if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
    const url = new URL(img.src);
    if (url.searchParams.get('category') !== category || url.searchParams.get('window') !== window)
      continue;
    if (!img.complete || img.naturalWidth === 0 || !img.classList.contains('leaflet-tile-loaded'))
      return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = Math.floor((x - r.left) * img.naturalWidth / r.width);
    const py = Math.floor((y - r.top) * img.naturalHeight / r.height);
    // The brightest alpha in a small square around the centre.
    const d = g.getImageData(Math.max(0, px - 4), Math.max(0, py - 4), 9, 9).data;
    let a = 0;
    for (let i = 3; i < d.length; i += 4) a = Math.max(a, d[i]);
    return a;
  }
  return null;
}
"""


def heat_alpha(page: Any, category: str, window: str, timeout: float = 30) -> int:
    """The heatmap's alpha (0-255) over the map centre for these filters, once drawn."""
    handle = page.wait_for_function(
        f"() => ({HEAT_AT_CENTRE})({[category, window]!r}) !== null", timeout=timeout * 1000
    )
    handle.dispose()
    alpha: int = page.evaluate(HEAT_AT_CENTRE, [category, window])
    return alpha


@pytest.fixture(scope="module")
def cluster(stack: LiveStack) -> tuple[float, float]:
    """Post a cluster through the API and wait until the stored tiles show it."""
    rng = random.Random(20261127)
    occurred = (datetime.now(UTC) - CLUSTER_AGE).isoformat()
    lat0, lon0 = CLUSTER
    for _ in range(CLUSTER_SIZE):
        body = {
            "lat": lat0 + rng.gauss(0, 0.0004),
            "lon": lon0 + rng.gauss(0, 0.0008),
            "category": CLUSTER_CATEGORY,
            "occurred_at": occurred,
        }
        resp = stack.post_report(body, {"Idempotency-Key": str(uuid.uuid4())})
        assert resp.status_code == 202, resp.text
    bbox = f"{lon0 - 0.01},{lat0 - 0.005},{lon0 + 0.01},{lat0 + 0.005}"

    def shown() -> bool:
        grid = stack.heatmap(bbox=bbox, zoom=CLUSTER_ZOOM, category=CLUSTER_CATEGORY, window="30d")
        return bool(grid["max_value"]) and float(grid["max_value"]) > 0

    poll(shown, 90, "the cluster to appear in the 30d heatmap", interval=0.5)
    return CLUSTER


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_report_through_the_form_is_acknowledged(
    open_page: Any, stack: LiveStack, viewport: str
) -> None:
    opened: OpenPage = open_page(view_url(stack, 60.3913, 5.3221, 15), viewport)  # Bergen
    page = opened.page

    click_map_centre(page)
    expect(page.get_by_text(re.compile(r"Marker at 60\.39"))).to_be_visible()
    page.get_by_label("Category", exact=True).select_option("harassment")
    description = page.get_by_label("Description", exact=True)
    description.fill("Dark passage under the bridge")
    expect(page.get_by_text("29 / 500 characters")).to_be_visible()
    page.get_by_role("button", name="Submit report").click()

    status = page.locator(".ack")
    expect(status).to_contain_text("Report received", timeout=15_000)
    report_id = UUID.search(status.inner_text())
    assert report_id, status.inner_text()
    expect(status).to_contain_text("Keep the reference")  # what `safetyheatmap remove` takes
    # The form starts over: no marker, no category, empty description.
    expect(page.get_by_label("Category", exact=True)).to_have_value("")
    expect(description).to_have_value("")
    no_horizontal_scroll(page)
    opened.problems.check()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_validation_errors_show_next_to_their_fields(
    open_page: Any, stack: LiveStack, viewport: str
) -> None:
    opened: OpenPage = open_page(view_url(stack, 60.3913, 5.3221, 15), viewport)
    page = opened.page
    submit = page.get_by_role("button", name="Submit report")

    # Checked in the page: nothing is sent.
    submit.click()
    category = page.get_by_label("Category", exact=True)
    expect(category).to_have_attribute("aria-invalid", "true")
    assert "Choose a category." in described_by(page, category)
    locate = page.get_by_role("button", name="Use my location")
    assert "Choose a place" in described_by(page, locate)

    # Checked by the server: the page places the 422's field error next to that field.
    def out_of_range(route: Any) -> None:
        route.continue_(post_data='{"lat": 91, "lon": 5.3221, "category": "theft"}')

    page.route("**/api/safetyheatmap/report/add", out_of_range)
    click_map_centre(page)
    category.select_option("theft")
    submit.click()
    expect(page.get_by_text("Latitude must be between -90 and 90.")).to_be_visible()
    assert "Latitude must be between -90 and 90." in described_by(page, locate)
    no_horizontal_scroll(page)
    opened.problems.check()


def test_heatmap_draws_the_cluster_and_follows_the_filters(
    open_page: Any, stack: LiveStack, cluster: tuple[float, float]
) -> None:
    lat, lon = cluster
    opened: OpenPage = open_page(
        view_url(stack, lat, lon, CLUSTER_ZOOM, category="all", window="30d"), "desktop"
    )
    page = opened.page

    assert heat_alpha(page, "all", "30d") > 0, "no heat over the cluster"
    expect(page.locator(".legend")).to_contain_text("Highest in this view")
    expect(page.locator(".freshness")).to_contain_text(re.compile(r"updated \d+ (s|min) ago"))

    # Another category: nothing here.
    page.get_by_label("Show on map").select_option("theft")
    assert heat_alpha(page, "theft", "30d") == 0
    assert "category=theft" in page.url

    # The cluster's own category, but only the last 7 days: the reports are older.
    page.get_by_label("Show on map").select_option(CLUSTER_CATEGORY)
    assert heat_alpha(page, CLUSTER_CATEGORY, "30d") > 0
    page.get_by_label("Time window").select_option("7d")
    assert heat_alpha(page, CLUSTER_CATEGORY, "7d") == 0
    page.get_by_label("Time window").select_option("365d")
    assert heat_alpha(page, CLUSTER_CATEGORY, "365d") > 0
    assert f"category={CLUSTER_CATEGORY}" in page.url and "window=365d" in page.url

    # The URL keeps the view: a shared link opens the same filters.
    shared = open_page(page.url, "desktop").page
    expect(shared.get_by_label("Show on map")).to_have_value(CLUSTER_CATEGORY)
    expect(shared.get_by_label("Time window")).to_have_value("365d")
    opened.problems.check()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_layout_fits_and_screenshot(
    open_page: Any,
    stack: LiveStack,
    cluster: tuple[float, float],
    viewport: str,
    tmp_path: Path,
) -> None:
    """No sideways scrolling at 1280x800 and 360x640; a screenshot of each for the docs.

    Screenshots go to the test's temporary folder, or to docs/ with
    SAFETYHEATMAP_SCREENSHOTS=docs (so that a test run does not change tracked files).
    """
    lat, lon = cluster
    zoom = CLUSTER_ZOOM + 1 if viewport == "desktop" else CLUSTER_ZOOM
    opened: OpenPage = open_page(
        view_url(stack, lat, lon, zoom, category="all", window="30d"), viewport
    )
    page = opened.page
    assert heat_alpha(page, "all", "30d") > 0
    no_horizontal_scroll(page)

    # Every control can be reached with the keyboard.
    reached: set[str] = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return (e.labels && e.labels[0] ? e.labels[0].textContent : e.textContent)"
                ".trim(); })()"
            )
        )
    for name in ("Show on map", "Time window", "Category", "Description", "Submit report"):
        assert name in reached, f"{name} is not reachable with Tab; reached {sorted(reached)}"

    # A report in progress next to the heat, for the picture.
    click_map_centre(page)
    page.get_by_label("Category", exact=True).select_option(CLUSTER_CATEGORY)
    page.get_by_label("Description", exact=True).fill("Street lights out along the river path")
    if viewport == "desktop":
        page.locator(".panel").evaluate("(el) => { el.scrollTop = 0; }")
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    expect(page.locator(".legend")).to_contain_text("Highest in this view")
    no_horizontal_scroll(page)

    target = ROOT / "docs" if os.environ.get("SAFETYHEATMAP_SCREENSHOTS") == "docs" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    shot = target / f"screenshot-{viewport}.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    opened.problems.check()


def test_page_survives_without_the_api(open_page: Any, stack: LiveStack) -> None:
    """When the API cannot be reached the page still shows the map and the form."""
    opened: OpenPage = open_page(f"{stack.url}/?lat=60.39&lon=5.32&z=12", "phone")
    page = opened.page
    # Reload with every API call failing, as if the service were down.
    page.route("**/api/**", lambda route: route.abort())
    page.reload()
    page.wait_for_selector(".leaflet-container")
    expect(page.get_by_text("The server could not be reached", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Submit report")).to_be_visible()
    time.sleep(0.5)
    no_horizontal_scroll(page)
    opened.problems.check()
