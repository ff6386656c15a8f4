"""The time slices' rule holds against a brute-force check of every class of the published
family (layers of every time and time slices together), and still shows what it can."""

from __future__ import annotations

import numpy as np
import pytest

from shared.geo import privacy
from shared.geo.timeprivacy import reference_pass, slice_time_masks

K = 3
INNER, OUTER = 2.3, 3.7
SHAPE = (10, 10)
WINS = 4
TIMES = 4


def _grids(
    u: np.ndarray, v: np.ndarray, cat: np.ndarray, ring: np.ndarray, time: np.ndarray,
    unit: np.ndarray, cats: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(C, W, T, rows, cols) counts and unit counts, windows cumulative."""
    raw = np.zeros((cats, WINS, TIMES, *SHAPE), dtype=np.int64)
    units = np.zeros_like(raw)
    for i in range(len(u)):
        for w in range(ring[i], WINS):
            raw[cat[i], w, time[i], int(v[i]), int(u[i])] += 1
            units[cat[i], w, time[i], int(v[i]), int(u[i])] += unit[i]
    return raw, units


def _decide(
    u: np.ndarray, v: np.ndarray, cat: np.ndarray, ring: np.ndarray, time: np.ndarray,
    unit: np.ndarray, cats: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    raw, units = _grids(u, v, cat, ring, time, unit, cats)
    rule = privacy.Rule(min_reports=K)
    per_cat, per_all = privacy.slice_masks(raw.sum(axis=2), units.sum(axis=2), rule, INNER, OUTER)
    crop = (0, SHAPE[0], 0, SHAPE[1])
    cat_t, all_t = slice_time_masks(raw, units, per_cat, per_all, K, INNER, OUTER, crop)
    return per_cat, per_all, cat_t, all_t


def _published(
    per_cat: np.ndarray, per_all: np.ndarray, cat_t: np.ndarray, all_t: np.ndarray,
    row: int, col: int,
) -> list[tuple[int | None, int, int | None]]:  # fmt: skip
    shown: list[tuple[int | None, int, int | None]] = []
    for w in range(WINS):
        if per_all[w, row, col]:
            shown.append((None, w, None))
        shown += [(None, w, t) for t in range(TIMES) if all_t[w, t, row, col]]
        for c in range(per_cat.shape[0]):
            if per_cat[c, w, row, col]:
                shown.append((c, w, None))
            shown += [(c, w, t) for t in range(TIMES) if cat_t[c, w, t, row, col]]
    return shown


@pytest.mark.parametrize("seed", range(40))
def test_every_class_of_everything_published_passes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    cats = 2
    # Reports in a few clumps, so some cells show and some classes are small.
    centres = rng.uniform(1, 9, size=(3, 2))
    pick = rng.integers(0, 3, n)
    u = np.clip(centres[pick, 0] + rng.normal(0, 1.2, n), 0, 9.99)
    v = np.clip(centres[pick, 1] + rng.normal(0, 1.2, n), 0, 9.99)
    cat = rng.integers(0, cats, n)
    ring = rng.integers(0, WINS, n)
    time = rng.choice(TIMES, n, p=[0.55, 0.15, 0.2, 0.1])
    unit = (rng.random(n) < 0.85).astype(np.int64)
    per_cat, per_all, cat_t, all_t = _decide(u, v, cat, ring, time, unit, cats)
    # A time slice shows only where its layer does.
    assert not (cat_t & ~per_cat[:, :, None]).any()
    assert not (all_t & ~per_all[:, None]).any()
    uu, vv = np.floor(u) + 0.5, np.floor(v) + 0.5
    for row in range(SHAPE[0]):
        for col in range(SHAPE[1]):
            d2 = (uu - (col + 0.5)) ** 2 + (vv - (row + 0.5)) ** 2
            shown = _published(per_cat, per_all, cat_t, all_t, row, col)
            assert reference_pass(
                cat, ring, time, unit, d2 <= OUTER**2, d2 <= INNER**2, shown, K
            ), (seed, row, col, shown)


def _place(spots: list[tuple[float, float, int, int, int]]) -> tuple[np.ndarray, ...]:
    """(u, v, category, ring, time) per report, every report a unit."""
    a = np.array(spots, dtype=np.float64)
    ints = [a[:, i].astype(np.int64) for i in (2, 3, 4)]
    return (a[:, 0], a[:, 1], *ints, np.ones(len(spots), dtype=np.int64))


def test_a_cluster_in_one_time_atom_shows_in_it_and_nowhere_else() -> None:
    u, v, cat, ring, time, unit = _place([(5.2, 5.2, 0, 0, 2)] * 3)
    _, per_all, cat_t, all_t = _decide(u, v, cat, ring, time, unit, 1)
    assert per_all[0, 5, 5] and all_t[0, 2, 5, 5] and cat_t[0, 3, 2, 5, 5]
    assert not all_t[:, [0, 1, 3], 5, 5].any()


def test_a_lone_report_in_another_time_hides_every_time_slice_near_it() -> None:
    """Three after dark on weekdays and one in daylight at the weekend, together: the layer
    shows (four), but showing the dark slice would let `layer - dark` isolate the lone one."""
    u, v, cat, ring, time, unit = _place([(5.2, 5.2, 0, 0, 2)] * 3 + [(5.6, 5.4, 0, 0, 1)])
    _, per_all, cat_t, all_t = _decide(u, v, cat, ring, time, unit, 1)
    assert per_all[0, 5, 5]
    assert not all_t[:, :, 5, 5].any() and not cat_t[:, :, :, 5, 5].any()
    # Far enough away that the lone one is not near, the cluster's slice shows.
    far = _place([(2.2, 2.2, 0, 0, 2)] * 3 + [(8.6, 8.4, 0, 0, 1)])
    *_, all_t = _decide(*far, 1)
    assert all_t[0, 2, 2, 2]


def test_two_categories_each_their_own_times_show_per_category() -> None:
    """Classes split by category: each category's atom needs its own k, not all's."""
    spots = [(5.2, 5.2, 0, 0, 0)] * 3 + [(5.3, 5.1, 1, 0, 3)] * 3
    per_cat, _, cat_t, all_t = _decide(*_place(spots), 2)
    assert per_cat[0, 0, 5, 5] and per_cat[1, 0, 5, 5]
    assert cat_t[0, 0, 0, 5, 5] and cat_t[1, 0, 3, 5, 5]
    assert all_t[0, 0, 5, 5] and all_t[0, 3, 5, 5] and not all_t[0, 1, 5, 5]
