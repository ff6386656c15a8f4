"""Demo data through the public API: reports that look like real ones, reproducibly.

Most reports fall in a few hotspots (Gaussian, ~150-400 m wide), the rest anywhere in the area;
categories are weighted (poor lighting and harassment most common), times spread over the last
90 days with evenings and nights most frequent, and about half carry a short description. Each
report has the Idempotency-Key ``seed-<seed>-<i>``, so running the same seed again stores
nothing new; another ``--seed`` adds more. Posts go through ``POST report/add`` like any
client's: a 429 (rate limit) or 503 is retried after its Retry-After with the same key.
Standard library only (the CLI runs in the service images too).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

AREAS: dict[str, tuple[float, float, float, float]] = {
    "london": (-0.16, 51.49, -0.06, 51.53),
    "paris": (2.29, 48.84, 2.40, 48.88),
    "nyc": (-74.02, 40.70, -73.93, 40.80),
    "berlin": (13.33, 52.49, 13.45, 52.54),
}

CATEGORY_WEIGHTS = {
    "poor_lighting": 30,
    "harassment": 25,
    "theft": 15,
    "unsafe_infrastructure": 15,
    "assault": 8,
    "other": 7,
}

DESCRIPTIONS = {
    "poor_lighting": ["No street lights along the path", "Underpass is completely dark"],
    "harassment": ["Catcalling outside the station", "Followed from the bus stop"],
    "theft": ["Phone snatched by a cyclist", "Bike stolen from the rack"],
    "unsafe_infrastructure": ["Broken pavement, no crossing", "Fence missing by the canal"],
    "assault": ["Fight outside the bar at closing time"],
    "other": ["Feels isolated after dark"],
}

# Hour-of-day weights: quiet mornings, busy evenings and nights.
HOUR_WEIGHTS = [4, 3, 3, 2, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 4, 5, 6, 8, 9, 9, 8, 7, 5]

ENDPOINT = "/api/safetyheatmap/report/add"


def parse_area(
    text: str, *, flag: str = "--area", named: bool = True
) -> tuple[float, float, float, float]:
    """A named area or minLon,minLat,maxLon,maxLat; errors name `flag`."""
    if named and text in AREAS:
        return AREAS[text]
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        names = f"one of {', '.join(sorted(AREAS))} or " if named else ""
        example = "" if named else ", e.g. -0.13,51.50,-0.12,51.51"
        raise ValueError(f"{flag}: {names}minLon,minLat,maxLon,maxLat{example}") from None
    if not (-180 <= west < east <= 180 and -85 <= south < north <= 85):
        raise ValueError(f"{flag}: west < east, south < north, within the map")
    return west, south, east, north


def plan(
    n: int, area: tuple[float, float, float, float], seed: int, now: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """(Idempotency-Key, body) for n reports; the same arguments give the same reports."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    west, south, east, north = area
    metres_lat = 1 / 111_320
    metres_lon = 1 / (111_320 * math.cos(math.radians((south + north) / 2)))
    hotspots = [
        (rng.uniform(west, east), rng.uniform(south, north), rng.uniform(150, 400))
        for _ in range(rng.randint(3, 6))
    ]
    categories = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    out = []
    for i in range(n):
        if rng.random() < 0.8:
            lon0, lat0, spread = rng.choice(hotspots)
            lon = lon0 + rng.gauss(0, spread) * metres_lon
            lat = lat0 + rng.gauss(0, spread) * metres_lat
        else:
            lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        lon, lat = min(max(lon, west), east), min(max(lat, south), north)
        category = rng.choices(categories, weights)[0]
        day = now - timedelta(days=rng.randint(0, 89))
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        occurred = day.replace(hour=hour, minute=rng.randint(0, 59), second=0, microsecond=0)
        occurred = min(occurred, now - timedelta(minutes=1))
        body: dict[str, Any] = {
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "category": category,
            "occurred_at": occurred.isoformat(),
        }
        if rng.random() < 0.5:
            body["description"] = rng.choice(DESCRIPTIONS[category])
        out.append((f"seed-{seed}-{i}", body))
    return out


def post_one(
    url: str, key: str, body: dict[str, Any], attempts: int = 20, timeout: float = 10.0
) -> int:
    """POST one report; retries 429/503 and connection errors. Returns the last status."""
    data = json.dumps(body).encode()
    status = 0
    for attempt in range(attempts):
        request = urllib.request.Request(  # noqa: S310 - the operator's own API URL
            url + ENDPOINT,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        wait = min(0.2 * 2**attempt, 5.0)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status not in (429, 503):
                return status
            wait = float(exc.headers.get("Retry-After") or wait)
        except OSError:
            status = 0
        time.sleep(wait)
    return status


def post_all(
    url: str,
    reports: list[tuple[str, dict[str, Any]]],
    *,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def one(item: tuple[str, dict[str, Any]]) -> None:
        status = post_one(url.rstrip("/"), *item)
        with lock:
            statuses[status] += 1
        if progress:
            progress(1)

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        list(pool.map(one, reports))
    return statuses


def now_utc() -> datetime:
    return datetime.now(UTC)
