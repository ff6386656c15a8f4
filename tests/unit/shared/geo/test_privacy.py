"""shared/geo/privacy.py against brute force: the disc sums, and the vectorised decision against
``reference_masks`` (per cell, classes found by grouping atoms), on random and chosen cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.geo import privacy
from shared.geo.privacy import Rule, disc_sum, reference_masks, slice_masks

RULE = Rule(3, 2.0)


def brute_disc(a: np.ndarray, radius: float) -> np.ndarray:
    rows, cols = a.shape
    out = np.zeros_like(a)
    if radius < 0:
        return out
    yy, xx = np.mgrid[0:rows, 0:cols]
    for r in range(rows):
        for c in range(cols):
            out[r, c] = a[(yy - r) ** 2 + (xx - c) ** 2 <= radius * radius].sum()
    return out


@pytest.mark.parametrize("radius", [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.3, 3.0, 4.99, 5.0, 7.5])
def test_disc_sum_is_the_sum_over_a_circle(radius: float) -> None:
    a = np.random.default_rng(int(radius * 10) + 20).integers(0, 4, (13, 17))
    np.testing.assert_array_equal(disc_sum(a, radius), brute_disc(a, radius))


def test_disc_sum_crop_is_the_same_cells() -> None:
    a = np.random.default_rng(3).integers(0, 3, (20, 24))
    whole = disc_sum(a, 4.2)
    np.testing.assert_array_equal(disc_sum(a, 4.2, (3, 15, 5, 21)), whole[3:15, 5:21])


def test_radii_shrink_and_grow_by_the_slack() -> None:
    inner, outer = Rule(3, 2.0).radii(5.0, privacy.slack(True))
    assert inner == pytest.approx(10 - math.sqrt(2)) and outer == pytest.approx(10 + math.sqrt(2))
    assert privacy.slack(False) == pytest.approx(math.sqrt(0.5))


def grids(
    u: np.ndarray, v: np.ndarray, cat: np.ndarray, ring: np.ndarray, unit: np.ndarray, shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    raw = np.zeros(shape, dtype=np.int64)
    units = np.zeros(shape, dtype=np.int64)
    for i in range(u.size):
        r, c = int(v[i]), int(u[i])
        raw[cat[i], ring[i] :, r, c] += 1
        units[cat[i], ring[i] :, r, c] += unit[i]
    return raw, units


def decide_both(u, v, cat, ring, unit, cats=3, wins=3, size=9, sigma=1.5, slack=0.7071):  # type: ignore[no-untyped-def]
    inner, outer = RULE.radii(sigma, slack)
    raw, units = grids(u, v, cat, ring, unit, (cats, wins, size, size))
    fast = slice_masks(raw, units, RULE, inner, outer)
    slow = reference_masks(u, v, cat, ring, unit, (size, size), cats, wins, RULE, inner, outer)
    return fast, slow


reports = st.integers(0, 14).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0, 8.999), min_size=n, max_size=n),
        st.lists(st.floats(0, 8.999), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 1, 1, 1]), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(reports, st.sampled_from([0.8, 1.5, 2.5]))
def test_decision_equals_the_brute_force_reference(case: tuple, sigma: float) -> None:
    u, v, cat, ring, unit = (np.asarray(x) for x in case)
    fast, slow = decide_both(u, v, cat, ring, unit, sigma=sigma)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def at(*cells: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([c[0] for c in cells]), np.array([c[1] for c in cells])


def test_a_lone_report_never_shows_and_three_do() -> None:
    u, v = at((4.5, 4.5))
    fast, _ = decide_both(u, v, np.array([0]), np.array([0]), np.array([1]))
    assert not fast[0].any() and not fast[1].any()
    u, v = at((4.5, 4.5), (4.5, 4.5), (5.5, 4.5))
    fast, _ = decide_both(u, v, np.zeros(3, int), np.zeros(3, int), np.ones(3, int))
    assert fast[0][0].all(axis=0)[4, 4] and fast[1][:, 4, 4].all()


def test_reports_that_are_not_units_do_not_count() -> None:
    u, v = at((4.5, 4.5), (4.5, 4.5), (5.5, 4.5))
    fast, _ = decide_both(u, v, np.zeros(3, int), np.zeros(3, int), np.array([1, 0, 0]))
    assert not fast[1].any()


def test_a_newer_report_among_older_ones_hides_the_longer_window() -> None:
    # Three reports this week and one older: 30d minus 7d would be the older one alone.
    u, v = at((4.5, 4.5), (4.5, 4.5), (5.5, 4.5), (4.5, 5.5))
    fast, _ = decide_both(u, v, np.zeros(4, int), np.array([0, 0, 0, 1]), np.ones(4, int))
    assert fast[1][0, 4, 4] and not fast[1][1, 4, 4] and not fast[1][2, 4, 4]
    assert fast[0][0, 0, 4, 4] and not fast[0][0, 1, 4, 4]


def test_all_minus_every_shown_category_is_checked_too() -> None:
    # Three harassment, three lighting and one theft: all - harassment - lighting = the theft.
    u, v = at(*[(4.5, 4.5)] * 7)
    cat = np.array([0, 0, 0, 1, 1, 1, 2])
    fast, slow = decide_both(u, v, cat, np.zeros(7, int), np.ones(7, int))
    assert fast[0][0, :, 4, 4].all() and fast[0][1, :, 4, 4].all()
    assert not fast[1][:, 4, 4].any()
    np.testing.assert_array_equal(fast[1], slow[1])


def test_a_two_by_two_difference_is_caught() -> None:
    # 7d: three of category 0 and three of 1; 8-30 days: three of category 0 and one of 1.
    # (all,30d) - (all,7d) - (0,30d) + (0,7d) is category 1's older report alone.
    u, v = at(*[(4.5, 4.5)] * 10)
    cat = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 1])
    ring = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    fast, slow = decide_both(u, v, cat, ring, np.ones(10, int))
    shown_all = fast[1][:, 4, 4]
    shown_0 = fast[0][0, :, 4, 4]
    assert shown_all[0] and shown_0[0] and shown_0[1]
    assert not shown_all[1]
    np.testing.assert_array_equal(fast[1], slow[1])


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        slice_masks(np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 3, 3)), RULE, 1.0, 2.0)
    with pytest.raises(ValueError):
        disc_sum(np.zeros(3), 1.0)
