"""The light and days filters ("after dark", "weekends") in a real browser over the real stack;
the page checked by axe-core at both layouts, and every filter used from the keyboard.

The reports seeded here (Ljubljana, far from every other test's place) all happened after dark
on a weekend: a Saturday at 23:30 UTC, past midnight on Sunday in Ljubljana (UTC+1/+2), when the
sun is far below civil twilight in every season. So "after dark" and "weekends" show them and
"in daylight" and "weekdays" do not.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import OpenPage, expect
from tests.support import LiveStack, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"

PLACE = (46.0569, 14.5058)  # Ljubljana
ZOOM = 14
SIZE = 8
CATEGORY = "harassment"


def last_saturday_night(now: datetime) -> datetime:
    """23:30 UTC on a Saturday 7 to 13 days ago: inside the 30-day window, in the past."""
    day = now.date() - timedelta(days=(now.weekday() - 5) % 7 + 7)
    return datetime.combine(day, time(23, 30), tzinfo=UTC)


def page_url(stack: LiveStack, **filters: str) -> str:
    lat, lon = PLACE
    query = f"lat={lat}&lon={lon}&z={ZOOM}&category=all&window=30d"
    for key, value in filters.items():
        query += f"&{key}={value}"
    return f"{stack.url}/?{query}"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


HEAT_AT_CENTRE = """
(want) => {
  // Alpha of the heatmap tile pixel under the centre of the map once the tile with exactly
  // these parameters (light and days absent meaning "any") has loaded; null while loading.
  const map = document.querySelector('.leaflet-container').getBoundingClientRect();
  const x = map.left + map.width / 2, y = map.top + map.height / 2;
  for (const img of document.querySelectorAll('.heatmap-layer img.leaflet-tile')) {
    const r = img.getBoundingClientRect();
    if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
    const p = new URL(img.src).searchParams;
    if (Object.entries(want).some(([k, v]) => (p.get(k) ?? 'any') !== v)) continue;
    if (!img.complete || img.naturalWidth === 0 || !img.classList.contains('leaflet-tile-loaded'))
      return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = Math.floor((x - r.left) * img.naturalWidth / r.width);
    const py = Math.floor((y - r.top) * img.naturalHeight / r.height);
    const d = g.getImageData(Math.max(0, px - 4), Math.max(0, py - 4), 9, 9).data;
    let a = 0;
    for (let i = 3; i < d.length; i += 4) a = Math.max(a, d[i]);
    return a;
  }
  return null;
}
"""


def heat_alpha(page: Any, light: str, days: str, timeout: float = 30) -> int:
    want = {"category": "all", "window": "30d", "light": light, "days": days}
    handle = page.wait_for_function(
        f"() => ({HEAT_AT_CENTRE})({want!r}) !== null", timeout=timeout * 1000
    )
    handle.dispose()
    alpha: int = page.evaluate(HEAT_AT_CENTRE, want)
    return alpha


@pytest.fixture(scope="module")
def night_cluster(stack: LiveStack) -> tuple[float, float]:
    """Reports after dark on a weekend, through the API; waits until the map of all times shows
    them (the time slices are then checked by the test, not waited for here)."""
    rng = random.Random(20261206)
    occurred = last_saturday_night(datetime.now(UTC)).isoformat()
    lat0, lon0 = PLACE
    for _ in range(SIZE):
        body = {
            "lat": lat0 + rng.gauss(0, 0.0004),
            "lon": lon0 + rng.gauss(0, 0.0006),
            "category": CATEGORY,
            "occurred_at": occurred,
        }
        resp = stack.post_report(body, {"Idempotency-Key": str(uuid.uuid4())})
        assert resp.status_code == 202, resp.text
    bbox = f"{lon0 - 0.01},{lat0 - 0.005},{lon0 + 0.01},{lat0 + 0.005}"

    def shown() -> bool:
        grid = stack.heatmap(bbox=bbox, zoom=ZOOM, category="all", window="30d")
        return bool(grid["max_value"]) and float(grid["max_value"]) > 0

    poll(shown, 90, "the night cluster to appear in the 30d heatmap", interval=0.5)
    return PLACE


def test_light_and_days_change_the_layer(
    open_page: Any, stack: LiveStack, night_cluster: tuple[float, float]
) -> None:
    opened: OpenPage = open_page(page_url(stack), "desktop")
    page = opened.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/heatmap/" in r.url else None)
    legend = page.get_by_test_id("legend-layer")

    # Today's URLs: no light or days anywhere while they are "any".
    expect(legend).to_have_text("All reports, last 30 days")
    assert heat_alpha(page, "any", "any") > 0, "no heat over the cluster"
    assert "light=" not in page.url and "days=" not in page.url
    download = page.get_by_test_id("download-view")
    assert "light=" not in (download.get_attribute("href") or "")

    page.get_by_label("Time of day").select_option("dark")
    page.get_by_label("Days", exact=True).select_option("weekends")
    expect(legend).to_have_text("All reports, after dark, weekends, last 30 days")
    expect(page).to_have_url(re.compile(r"[?&]light=dark(&|$)"))
    assert query(page.url)["days"] == "weekends"
    expect(download).to_have_attribute("href", re.compile(r"light=dark&days=weekends"))

    def wait_asked(kind: str, light: str, days: str) -> None:
        # Playwright's events arrive during its own calls: wait with the page, not time.sleep.
        for _ in range(100):
            if any(
                kind in u and query(u).get("light") == light and query(u).get("days") == days
                for u in asked
            ):
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"no {kind} request with light={light}&days={days}: {asked[-5:]}")

    wait_asked("/heatmap/get", "dark", "weekends")
    wait_asked("/heatmap/tiles/", "dark", "weekends")

    # The category in words too; then daylight, on weekdays.
    page.get_by_label("Show on map").select_option(CATEGORY)
    expect(legend).to_have_text("Harassment, after dark, weekends, last 30 days")
    page.get_by_label("Show on map").select_option("all")
    page.get_by_label("Time of day").select_option("daylight")
    expect(legend).to_have_text("All reports, in daylight, weekends, last 30 days")
    wait_asked("/heatmap/tiles/", "daylight", "weekends")

    # A shared link opens the same filters.
    shared = open_page(page.url, "desktop").page
    expect(shared.get_by_label("Time of day")).to_have_value("daylight")
    expect(shared.get_by_label("Days", exact=True)).to_have_value("weekends")
    expect(shared.get_by_test_id("legend-layer")).to_have_text(
        "All reports, in daylight, weekends, last 30 days"
    )

    # The data (needs the backend's time slices): the cluster shows after dark and at weekends
    # only. If the server ignores light/days, "in daylight" and "weekdays" would still show it.
    assert heat_alpha(page, "daylight", "weekends") == 0, "the night cluster shows in daylight"
    page.get_by_label("Time of day").select_option("dark")
    assert heat_alpha(page, "dark", "weekends") > 0, "the night cluster is missing after dark"
    page.get_by_label("Days", exact=True).select_option("weekdays")
    assert heat_alpha(page, "dark", "weekdays") == 0, "the weekend cluster shows on weekdays"
    page.get_by_label("Days", exact=True).select_option("weekends")
    # The table lists it: its densest place is within a few hundred metres of the seed.
    page.get_by_role("button", name="Show as table").click()
    table = page.get_by_role("table")
    expect(table).to_contain_text("All reports, after dark, weekends, last 30 days")
    first = table.locator("tbody tr").first
    expect(first).to_contain_text(re.compile(r"46\.05\d\d° N, 14\.50\d\d° E"))
    opened.problems.check()


def run_axe(page: Any) -> list[dict[str, Any]]:
    assert AXE.exists(), f"no {AXE}: run `make frontend-deps` (npm ci in frontend/)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
    )
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])][:5]
        lines.append(f"{v['id']} ({v.get('impact')}): {v['help']} at {targets}")
    return "\n".join(lines)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_no_axe_violations(
    open_page: Any, stack: LiveStack, night_cluster: tuple[float, float], viewport: str
) -> None:
    """axe-core finds nothing on the page as it opens, nor with the filters set and the table
    open. The page's CSP would block axe's script: the context bypasses it (the CSP itself is
    checked by the other tests)."""
    opened: OpenPage = open_page(
        page_url(stack, light="dark", days="weekends"), viewport, bypass_csp=True
    )
    page = opened.page
    expect(page.get_by_test_id("legend-layer")).to_contain_text("after dark")
    page.wait_for_timeout(500)
    violations = run_axe(page)
    assert not violations, f"axe at {viewport}:\n{describe(violations)}"

    page.get_by_role("button", name="Show as table").click()
    expect(page.get_by_role("button", name="Hide the table")).to_be_visible()
    page.wait_for_timeout(500)
    violations = run_axe(page)
    assert not violations, f"axe at {viewport}, table open:\n{describe(violations)}"


def focus_by_tab(page: Any, element_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reached with Tab in {limit} presses")


def focus_ring(page: Any) -> str:
    style: str = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle + ' ' + s.outlineWidth; })()"
    )
    return style


def test_filters_by_keyboard(open_page: Any, stack: LiveStack) -> None:
    """Tab reaches every filter in order; the arrow keys change the selects (the URL follows);
    Enter opens the table. Each shows a visible focus ring."""
    opened: OpenPage = open_page(page_url(stack), "desktop")
    page = opened.page
    page.locator("body").click(position={"x": 1, "y": 1})

    focus_by_tab(page, "filter-category")
    assert focus_ring(page).startswith("solid"), focus_ring(page)
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(r"category=(?!all)"))
    page.keyboard.press("Home")
    expect(page).to_have_url(re.compile(r"category=all"))

    focus_by_tab(page, "filter-window", 2)
    page.keyboard.press("ArrowUp")  # 30d -> 7d
    expect(page).to_have_url(re.compile(r"window=7d"))

    focus_by_tab(page, "filter-light", 2)
    assert focus_ring(page).startswith("solid"), focus_ring(page)
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(r"light=daylight"))
    page.keyboard.press("End")
    expect(page).to_have_url(re.compile(r"light=dark"))
    expect(page.get_by_test_id("legend-layer")).to_have_text("All reports, after dark, last 7 days")

    focus_by_tab(page, "filter-days", 2)
    assert focus_ring(page).startswith("solid"), focus_ring(page)
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(r"days=weekdays"))
    page.keyboard.press("ArrowDown")
    expect(page).to_have_url(re.compile(r"days=weekends"))
    page.keyboard.press("Home")
    expect(page).to_have_url(re.compile(r"^(?!.*days=)"))

    focus_by_tab(page, "filter-opacity", 2)
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".range-value")).to_have_text("65%")

    toggle = page.get_by_role("button", name="Show as table")
    for _ in range(5):
        page.keyboard.press("Tab")
        if toggle.evaluate("(el) => el === document.activeElement"):
            break
    expect(toggle).to_be_focused()
    assert focus_ring(page).startswith("solid"), focus_ring(page)
    page.keyboard.press("Enter")
    hide = page.get_by_role("button", name="Hide the table")
    expect(hide).to_have_attribute("aria-expanded", "true")
    # Whatever the data: a table, the empty state or the failure sentence, never nothing.
    expect(
        page.locator(".densest table, [data-testid=densest-empty], .densest .field-error").first
    ).to_be_visible()
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Show as table")).to_have_attribute(
        "aria-expanded", "false"
    )
    opened.problems.check()
