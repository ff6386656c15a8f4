"""Attack harness: how well can a viewer locate one report from what the API serves?

Against a running stack (moto server, gunicorn, a Celery worker, all on 127.0.0.1), with
distinct submitters counted (``PRIVACY_DISTINCT_SUBMITTERS=true``) and reports posted from
several loopback addresses (Linux routes 127/8 to lo: each address is another client, another
pseudonym). The attacker only uses the public API: ``heatmap/get`` at zooms 10-16 (grids in
reports/km^2 at cell centres) and, for the before/after attack, the same grids read twice.
No shortcut through the code.

Each attack is run on two stacks in the same run:

- ``protected``: the defaults (k = ``PRIVACY_MIN_REPORTS`` = 3 distinct submitters within
  ``PRIVACY_RADIUS_FACTOR`` = 2 bandwidths, differencing suppressed);
- ``baseline``: ``PRIVACY_MIN_REPORTS=1`` and the same circle, i.e. no threshold: what the same
  attacker gets from a map that shows every report.

The attacker's estimate of the victim's position is the peak of what it sees (a grid, or the
difference of two grids), refined by the weighted centroid of the cells within one bandwidth
of it; with nothing shown there is no estimate. Printed per attack and stack: trials, how many
gave an estimate, the best (smallest) localisation error in metres over all trials and zooms,
the median best error per trial, the share of trials located within half a bandwidth (100 m),
and the share *singled out*: located within 100 m and nearer the victim than any other report
of the trial (a victim shown as one of k reports close together is located, by design, but not
told apart). ``ratio`` is protected / baseline singled out.

Attacks:

- ``lone-m-at-d``: the victim with m = 0..k-1 other reports (distinct submitters) at d
  bandwidths (0.5 to 6) in random directions;
- ``window-diff``: three recent reports (distinct submitters) beside a victim 20 days old:
  30d minus 7d would be the victim alone;
- ``category-diff``: three harassment reports beside a theft victim: all minus harassment;
- ``plant-1-client``: the attacker posts k-1 reports beside the victim from one address, and
  subtracts its own kernels from what shows;
- ``plant-k-clients``: the same from k-1 addresses (a Sybil attack), paced by the default rate
  limit, which bounds its speed, not its success;
- ``before-after``: a cluster of k reports is on the map; the victim joins it; the attacker
  differences the grid before and after.

    .venv/bin/python bench/privacy.py [--trials 6]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import requests
from benchlib import API, start_stack

from shared.geo.tiles import lonlat_to_world, world_to_lonlat

R_EARTH = 6_378_137.0
BANDWIDTH_M = 200.0
ZOOMS = (10, 11, 12, 13, 14, 15, 16)
HIT_M = 0.5 * BANDWIDTH_M
K = 3


def offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / R_EARTH
    dlon = metres * math.sin(bearing) / (R_EARTH * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = math.radians(a[0] - b[0]) * R_EARTH
    dx = math.radians(a[1] - b[1]) * R_EARTH * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


class Client:
    """Posts from many loopback addresses, each a client of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self._next = 0

    def address(self) -> str:
        self._next += 1
        return f"127.1.{self._next // 250}.{self._next % 250 + 1}"

    def post(self, lat: float, lon: float, category: str, when: str | None, src: str) -> None:
        body: dict[str, Any] = {"lat": lat, "lon": lon, "category": category}
        if when:
            body["occurred_at"] = when
        host, port = self.url.split("//")[1].split(":")
        while True:
            conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(src, 0))
            conn.request(
                "POST", f"{API}/report/add", json.dumps(body), {"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            retry = resp.getheader("Retry-After")
            resp.read()
            conn.close()
            if resp.status == 202:
                return
            if resp.status == 429:  # the rate limit paces a Sybil: wait as told
                time.sleep(float(retry or 1))
                continue
            raise RuntimeError(f"POST answered {resp.status}")

    def grid(self, lat: float, lon: float, zoom: int, **layer: str) -> tuple[np.ndarray, Any]:
        cell_m = 40_075_016.686 * math.cos(math.radians(lat)) / (256 << zoom)
        # 3 bandwidths around, more at coarse zooms, within heatmap/get's cap (512 x 512).
        half = min(3 * BANDWIDTH_M + (1500 if zoom <= 12 else 0), 250 * cell_m)
        south, _ = offset(lat, lon, half, math.pi)
        north, _ = offset(lat, lon, half, 0)
        _, west = offset(lat, lon, half, -math.pi / 2)
        _, east = offset(lat, lon, half, math.pi / 2)
        params = {"bbox": f"{west},{south},{east},{north}", "zoom": zoom, **layer}
        resp = self.http.get(f"{self.url}{API}/heatmap/get", params=params, timeout=30)
        resp.raise_for_status()
        data = resp.json()
        values = np.asarray(data["values"], dtype=float)
        return values, centres(data)

    def settled(self, timeout: float = 120.0) -> None:
        """Nothing queued or dirty, and the background pass (categories, overviews) done."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            status = self.http.get(f"{self.url}{API}/status", timeout=10).json()
            idle = status.get("dirty_partitions") == 0 and not any(
                (q or {}).get("visible") or (q or {}).get("in_flight")
                for q in (status.get("queue"), status.get("dlq"))
                if isinstance(q, dict)
            )
            now = time.monotonic()
            if idle:
                quiet_since = quiet_since or now
                if now - quiet_since > 3.0:  # the background pass runs within a second
                    return
            else:
                quiet_since = None
            time.sleep(0.3)
        raise TimeoutError("the stack did not settle")


def centres(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = data["bbox"]
    h, w = data["height"], data["width"]
    mx0, my0 = lonlat_to_world(np.array([west]), np.array([north]))
    mx1, my1 = lonlat_to_world(np.array([east]), np.array([south]))
    cols = mx0[0] + (np.arange(w) + 0.5) / w * (mx1[0] - mx0[0])
    rows = my0[0] + (np.arange(h) + 0.5) / h * (my1[0] - my0[0])
    glon, glat = np.broadcast_arrays(*world_to_lonlat(cols[None, :], rows[:, None]))
    return glat, glon


def kernel(glat: np.ndarray, glon: np.ndarray, at: tuple[float, float]) -> np.ndarray:
    """One report's density (reports/km^2) at the cells: what an attacker subtracts."""
    dy = np.radians(glat - at[0]) * R_EARTH
    dx = np.radians(glon - at[1]) * R_EARTH * math.cos(math.radians(at[0]))
    s2 = BANDWIDTH_M**2
    return np.asarray(np.exp(-(dx * dx + dy * dy) / (2 * s2)) / (2 * math.pi * s2) * 1e6)


def estimate(values: np.ndarray, glat: np.ndarray, glon: np.ndarray) -> tuple[float, float] | None:
    """The peak, refined by the weighted centroid within one bandwidth of it."""
    if not (values > 0).any():
        return None
    i, j = np.unravel_index(int(np.argmax(values)), values.shape)
    peak = (float(glat[i, j]), float(glon[i, j]))
    dy = np.radians(glat - peak[0]) * R_EARTH
    dx = np.radians(glon - peak[1]) * R_EARTH * math.cos(math.radians(peak[0]))
    near = (dx * dx + dy * dy <= BANDWIDTH_M**2) & (values > 0)
    weights = values[near]
    return float((glat[near] * weights).sum() / weights.sum()), float(
        (glon[near] * weights).sum() / weights.sum()
    )


@dataclass
class Trial:
    """One placement: the victim and what the attacker knows and does."""

    victim: tuple[float, float]
    view: Callable[[Client, int], tuple[np.ndarray, Any]]
    others: list[tuple[float, float]] = field(default_factory=list)
    """The trial's other reports (the harness knows them, the attacker does not)."""
    errors: list[float] = field(default_factory=list)
    singled: bool = False
    """Some estimate lay within HIT_M of the victim and nearer to it than to any other report:
    the victim told apart, not merely one of a group that the rule lets show."""

    def attack(self, client: Client) -> None:
        for z in ZOOMS:
            values, (glat, glon) = self.view(client, z)
            guess = estimate(values, glat, glon)
            if guess is not None:
                error = distance_m(guess, self.victim)
                self.errors.append(error)
                nearest_other = min((distance_m(guess, o) for o in self.others), default=math.inf)
                self.singled |= error <= HIT_M and error < nearest_other


@dataclass
class Attack:
    name: str
    trials: list[Trial] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)


def iso(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


class Places:
    """Each trial far from every other (0.3 degrees apart), so none sees another."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> tuple[float, float]:
        self.n += 1
        return 30.0 + 0.3 * (self.n // 20), -110.0 + 0.3 * (self.n % 20)


def plain_view(victim: tuple[float, float], **layer: str) -> Callable[[Client, int], Any]:
    return lambda client, z: client.grid(*victim, z, **layer)


def diff_view(victim: tuple[float, float], big: dict[str, str], small: dict[str, str]) -> Any:
    def view(client: Client, z: int) -> tuple[np.ndarray, Any]:
        a, where = client.grid(*victim, z, **big)
        b, _ = client.grid(*victim, z, **small)
        both = (a > 0) & (b > 0)  # a difference means something only where both show
        return np.where(both, a - b, 0.0), where

    return view


def planted_view(victim: tuple[float, float], planted: list[tuple[float, float]]) -> Any:
    def view(client: Client, z: int) -> tuple[np.ndarray, Any]:
        values, (glat, glon) = client.grid(*victim, z)
        own = sum(kernel(glat, glon, p) for p in planted)
        return np.where(values > 0, values - own, 0.0), (glat, glon)

    return view


def build(client: Client, trials: int, seed: int) -> tuple[list[Attack], list[Callable[[], None]]]:
    """Post every attack's reports; returns the attacks and the second phase's posts."""
    rng = random.Random(seed)
    place = Places()
    attacks: list[Attack] = []
    for m in range(K):
        for d in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0):
            attack = Attack(f"lone-{m}-at-{d:g}bw")
            for _ in range(trials):
                victim = place()
                client.post(*victim, "harassment", None, client.address())
                others = []
                for _ in range(m):
                    other = offset(*victim, d * BANDWIDTH_M, rng.uniform(0, 2 * math.pi))
                    client.post(*other, "harassment", None, client.address())
                    others.append(other)
                attack.trials.append(Trial(victim, plain_view(victim), others))
            attacks.append(attack)
    window, category = Attack("window-diff"), Attack("category-diff")
    plant_one, plant_many = Attack("plant-1-client"), Attack("plant-k-clients")
    before_after = Attack("before-after")
    second: list[Callable[[], None]] = []
    for _ in range(trials):
        victim = place()
        client.post(*victim, "harassment", iso(20), client.address())
        others = [offset(*victim, 60.0, rng.uniform(0, 2 * math.pi)) for _ in range(K)]
        for near in others:
            client.post(*near, "harassment", None, client.address())
        view = diff_view(victim, {"window": "30d"}, {"window": "7d"})
        window.trials.append(Trial(victim, view, others))

        victim = place()
        client.post(*victim, "theft", None, client.address())
        others = [offset(*victim, 60.0, rng.uniform(0, 2 * math.pi)) for _ in range(K)]
        for near in others:
            client.post(*near, "harassment", None, client.address())
        view = diff_view(victim, {}, {"category": "harassment"})
        category.trials.append(Trial(victim, view, others))

        for attack, sybil in ((plant_one, False), (plant_many, True)):
            victim = place()
            client.post(*victim, "harassment", None, client.address())
            attacker = client.address()
            planted = []
            for _i in range(K - 1):
                p = offset(*victim, 80.0, rng.uniform(0, 2 * math.pi))
                client.post(*p, "harassment", None, client.address() if sybil else attacker)
                planted.append(p)
            attack.trials.append(Trial(victim, planted_view(victim, planted), planted))

        victim = place()
        others = [offset(*victim, 60.0, rng.uniform(0, 2 * math.pi)) for _ in range(K)]
        for near in others:
            client.post(*near, "harassment", None, client.address())
        before_after.trials.append(Trial(victim, plain_view(victim), others))  # view: below
        second.append(partial(client.post, *victim, "harassment", None, client.address()))
    attacks += [window, category, plant_one, plant_many, before_after]
    return attacks, second


def run(stack_env: dict[str, str], trials: int, seed: int) -> dict[str, Attack]:
    env = {
        "SAFETYHEATMAP_PRIVACY_DISTINCT_SUBMITTERS": "true",
        "SAFETYHEATMAP_RECOMPUTE_DELAY": "0.2",
        "SAFETYHEATMAP_BACKGROUND_REFRESH_S": "1",
        **stack_env,
    }
    stack = start_stack(env, workers=1, prefix="safetyheatmap-privacy-")
    try:
        client = Client(stack.url)
        attacks, second = build(client, trials, seed)
        client.settled()
        before_after = attacks[-1]
        before = {}
        for trial in before_after.trials:
            before[trial.victim] = {z: client.grid(*trial.victim, z) for z in ZOOMS}
        for post in second:
            post()
        client.settled()
        for trial in before_after.trials:
            old = before[trial.victim]

            def view(c: Client, z: int, v: tuple[float, float] = trial.victim, o: Any = old) -> Any:
                now, where = c.grid(*v, z)
                was = o[z][0]
                return np.where((now > 0) & (was > 0), now - was, 0.0), where

            trial.view = view
        for attack in attacks:
            for trial in attack.trials:
                trial.attack(client)
        return {a.name: a for a in attacks}
    finally:
        stack.stop()


def summary(attack: Attack) -> tuple[int, int, float, float, float, float]:
    n = len(attack.trials)
    bests = [min(t.errors) for t in attack.trials if t.errors]
    best = min(bests, default=math.inf)
    median = statistics.median(bests) if bests else math.inf
    hits = sum(1 for b in bests if b <= HIT_M)
    singled = sum(1 for t in attack.trials if t.singled)
    return n, len(bests), best, median, hits / n if n else 0.0, singled / n if n else 0.0


def fmt(x: float) -> str:
    return "-" if math.isinf(x) else f"{x:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    protected = run({}, args.trials, args.seed)
    baseline = run({"SAFETYHEATMAP_PRIVACY_MIN_REPORTS": "1"}, args.trials, args.seed)
    print(
        f"{'attack':<18} {'stack':<9} {'trials':>6} {'located':>7} {'best m':>7} "
        f"{'median m':>8} {'<=100m':>7} {'singled':>7} {'ratio':>6}"
    )
    for name, attack in protected.items():
        base = summary(baseline[name])
        for label, row in (("protected", summary(attack)), ("baseline", base)):
            n, located, best, median, rate, singled = row
            ratio = f"{singled / base[5]:.2f}" if label == "protected" and base[5] else ""
            print(
                f"{name:<18} {label:<9} {n:>6} {located:>7} {fmt(best):>7} {fmt(median):>8} "
                f"{rate:>7.0%} {singled:>7.0%} {ratio:>6}"
            )
    print(
        f"(<=100m: some estimate within {HIT_M:.0f} m of the victim; singled: that, and nearer "
        f"the victim than any other report; ratio: singled, protected / baseline; "
        f"{time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
