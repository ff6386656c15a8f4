"""Disclosure control: which cells of which slices of the map may show a value.

Pure array code (no I/O): the recompute (``workers.pyramid``) calls it for every zoom it stores,
the tests hold it against a brute-force reference (``reference_masks``), and the attack
harness (``bench/privacy.py``) checks what it lets through from outside. The threat model and
the choices are written up in docs/ARCHITECTURE.md ("Privacy").

The rule, for a cell at one zoom, where ``h`` is the zoom's effective bandwidth (the kernel's
standard deviation there, at least one cell) and ``k`` is ``PRIVACY_MIN_REPORTS``:

1. **Primary.** A slice (a category and a time window) shows a value at a cell only where at
   least ``k`` distinct submitters have a report of that slice within ``radius_factor x h``
   of the cell's centre, a distance on the ground (a circle).
2. **Differencing.** Slices are nested: windows are nested (7d in 30d in 365d in all), each
   category lies in ``all``. A viewer can add and subtract any slices that show a value at a
   cell. Every set of reports that such sums can isolate must hold no report near the cell or
   at least ``k`` distinct submitters near it; otherwise the larger slice is hidden there.
   Concretely the reports are split into *atoms* (one category x one ring of ages between
   consecutive windows); two atoms are in one *class* when the same shown slices hold them.
   Any sum or difference of shown slices is a sum of whole classes, so it is enough that
   every class passes. Slices are decided smallest first (each category's windows in order,
   then ``all``'s windows), each against the classes that it and the slices shown before it
   make. This is the secondary suppression statistical agencies apply to published tables;
   it covers a pair of nested slices (``30d`` minus ``7d``) and longer sums (``all`` minus
   every shown category, or ``30d - 7d`` of ``all`` minus the same of one category).
3. **Zooms.** Every stored zoom applies 1 and 2 at its own bandwidth. Zooms finer than the
   finest stored one are interpolated from it and show a value only inside a stored cell
   that shows one; so the stored finest zoom applies the rule to every point of a cell, not
   just its centre (see ``slack``).

Reports are binned to cells, so a report's distance to a cell centre is known only to within
half a cell's diagonal. Counting towards ``k`` uses the circle shrunk by that slack (a report
counts only if it is surely near), and "no report near" uses the circle grown by it (a report
that may be near counts as near): both err towards hiding.

Distinct submitters: each report carries a *unit* weight of 1 if it is the first report of its
submitter's pseudonym, 0 otherwise (``shared.model.pseudonym``), so a sum of unit counts over any
set
of reports is at most the number of distinct submitters among them, and such sums add up
across atoms and cells. Without pseudonyms every report is its own unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HALF_DIAGONAL = math.sqrt(0.5)
"""Farthest a point of a cell lies from the cell's centre, in cells."""


@dataclass(frozen=True)
class Rule:
    """The disclosure rule's two numbers (settings PRIVACY_MIN_REPORTS, PRIVACY_RADIUS_FACTOR)."""

    min_reports: int = 3
    radius_factor: float = 2.0

    def radii(self, sigma_cells: float, slack_cells: float) -> tuple[float, float]:
        """(inner, outer) radius in cells: the circle shrunk and grown by ``slack_cells``."""
        radius = self.radius_factor * sigma_cells
        return radius - slack_cells, radius + slack_cells


def slack(interpolated_below: bool) -> float:
    """How far (cells) a report may lie from its cell's centre, plus, for the finest stored
    zoom (``interpolated_below``), how far a point shown at a finer zoom may lie from it."""
    return 2 * HALF_DIAGONAL if interpolated_below else HALF_DIAGONAL


Crop = tuple[int, int, int, int]
"""Rows [r0, r1) and columns [c0, c1) of a grid."""


def disc_sum(counts: npt.ArrayLike, radius: float, crop: Crop | None = None) -> IntArray:
    """Sum of ``counts`` over the cells whose centre lies within ``radius`` cells (inclusive) of
    each cell's centre, zero outside the array; exact integers. With ``crop``, only for the
    cells of that part of the grid (the sums still see the whole grid).

    Row by row: for each row offset the disc is one run of columns, summed from a prefix sum
    along the rows, and a row offset and its mirror share that run. O(cells x radius) with a
    few whole-array operations per row offset: 2-4x faster here than an FFT convolution for
    the radii of the map (5-20 cells), and exact, which a comparison against ``k`` wants.
    """
    a = np.asarray(counts, dtype=np.int64)
    if a.ndim != 2:
        raise ValueError(f"counts must be 2-D, got shape {a.shape}")
    height, width = a.shape
    r0, r1, c0, c1 = crop if crop is not None else (0, height, 0, width)
    out = np.zeros((r1 - r0, c1 - c0), dtype=np.int64)
    if radius < 0 or a.size == 0 or out.size == 0:
        return out
    r = math.floor(radius)
    prefix = np.zeros((height + 2 * r, width + 2 * r + 1), dtype=np.int64)
    # prefix[:, j] = sum of the zero-padded row's first j cells (the data starts at column r).
    np.cumsum(a, axis=1, out=prefix[r : r + height, r + 1 : r + 1 + width])
    prefix[r : r + height, r + 1 + width :] = prefix[r : r + height, r + width : r + width + 1]
    r2 = radius * radius
    for dy in range(0, r + 1):
        w = _half_width(r2, dy)
        if w < 0:
            continue
        rows = prefix[r + dy + r0 : r + dy + r1]
        if dy:
            rows = rows + prefix[r - dy + r0 : r - dy + r1]
        out += rows[:, r + w + 1 + c0 : r + w + 1 + c1]
        out -= rows[:, r - w + c0 : r - w + c1]
    return out


def _half_width(r2: float, dy: int) -> int:
    """Largest w with w^2 + dy^2 <= r2 (-1 if none)."""
    rest = r2 - dy * dy
    if rest < 0:
        return -1
    w = math.isqrt(int(rest))
    while (w + 1) ** 2 + dy * dy <= r2:
        w += 1
    while w > 0 and w * w + dy * dy > r2:
        w -= 1
    return w


def slice_masks(
    raw: npt.ArrayLike,
    units: npt.ArrayLike,
    rule: Rule,
    inner: float,
    outer: float,
    crop: Crop | None = None,
    unpublished: int = 0,
) -> tuple[BoolArray, BoolArray]:
    """Which cells each slice may show.

    ``raw`` and ``units`` are ``(C, W, H, X)`` per-cell counts of the reports of category
    ``c`` within window ``w`` (windows cumulative and ordered from the shortest), ``units``
    counting each report's unit weight. Returns ``(per_category, total)``: boolean masks of
    shape ``(C, W, ...)`` for the category slices and ``(W, ...)`` for ``all``, over the cells
    of ``crop`` (default: the whole grid; the sums always see the whole grid). The last
    ``unpublished`` categories are never shown (reports whose category is not known yet:
    they count in ``all`` and sit in its pool).
    """
    raw_a = np.asarray(raw, dtype=np.int64)
    units_a = np.asarray(units, dtype=np.int64)
    if raw_a.shape != units_a.shape or raw_a.ndim != 4:
        raise ValueError("raw and units must be (categories, windows, rows, cols) alike")
    cats, wins, height, width = raw_a.shape
    box = crop if crop is not None else (0, height, 0, width)
    shape = (box[1] - box[0], box[3] - box[2])
    cat_masks = np.zeros((cats, wins, *shape), dtype=bool)
    all_masks = np.zeros((wins, *shape), dtype=bool)
    # Only cells where `all` over the longest window could pass can show anything.
    total = disc_sum(units_a[:, -1].sum(axis=0), inner, box)
    cells = np.flatnonzero(total >= rule.min_reports)
    if cells.size == 0:
        return cat_masks, all_masks
    near = cumulative_disc(raw_a, outer, box, cells)  # a report that may be near
    sure = cumulative_disc(units_a, inner, box, cells)  # distinct submitters surely near
    cat_flat, all_flat = _decide(near, sure, rule.min_reports, cats - unpublished)
    cat_masks.reshape(cats, wins, -1)[:, :, cells] = cat_flat
    all_masks.reshape(wins, -1)[:, cells] = all_flat
    return cat_masks, all_masks


def cumulative_disc(counts: IntArray, radius: float, crop: Crop, cells: IntArray) -> IntArray:
    """disc_sum of every (category, window) grid at ``cells`` (flat indices into the crop),
    with index 0 of the window axis for the empty window: shape (C, W + 1, len(cells))."""
    cats, wins = counts.shape[:2]
    out = np.zeros((cats, wins + 1, cells.size), dtype=np.int64)
    for c in range(cats):
        for w in range(wins):
            grid = counts[c, w]
            if w and np.array_equal(grid, counts[c, w - 1]):
                out[c, w + 1] = out[c, w]  # no report in this ring: the same sums
            elif grid.any():
                out[c, w + 1] = disc_sum(grid, radius, crop).reshape(-1)[cells]
    return out


def _passes(near: IntArray, sure: IntArray, k: int) -> BoolArray:
    """A class with no report near is safe; one with reports needs k distinct submitters."""
    return np.asarray((near == 0) | (sure >= k))


def _decide(
    near: IntArray, sure: IntArray, k: int, published: int | None = None
) -> tuple[BoolArray, BoolArray]:
    """The greedy decision over cumulative sums per cell ((C, W + 1, N), index 0 = the empty
    window): each category's windows in order, then all's, each kept only if every class of
    the slices shown so far and itself passes. Categories from ``published`` on are never
    shown."""
    cats, wins1, n = near.shape
    wins = wins1 - 1
    idx = np.arange(n)
    cat_masks = np.zeros((cats, wins, n), dtype=bool)
    top = np.zeros((cats, n), dtype=np.int64)  # largest shown window of each category
    # A window that adds no report to the one before decides as that one did (its checks are
    # the same sums): most cities' reports are all recent, so most windows are copies.
    same = [
        [w > 1 and np.array_equal(near[c, w], near[c, w - 1]) for w in range(wins + 1)]
        for c in range(cats)
    ]
    for c in range(cats if published is None else published):
        last = top[c]
        for w in range(1, wins + 1):
            if same[c][w] and np.array_equal(sure[c, w], sure[c, w - 1]):
                cat_masks[c, w - 1] = cat_masks[c, w - 2]
                last[cat_masks[c, w - 1]] = w
                continue
            ring_n = near[c, w] - near[c, last, idx]
            ring_d = sure[c, w] - sure[c, last, idx]
            ok = (sure[c, w] >= k) & _passes(ring_n, ring_d, k)
            cat_masks[c, w - 1] = ok
            last[ok] = w
    all_masks = np.zeros((wins, n), dtype=bool)
    total_sure = sure.sum(axis=0)
    shown = np.zeros((wins + 1, n), dtype=bool)  # shown[w]: all's window w is shown
    for w in range(1, wins + 1):
        if (
            w > 1
            and all(same[c][w] for c in range(cats))
            and np.array_equal(sure[:, w], sure[:, w - 1])
        ):
            all_masks[w - 1] = all_masks[w - 2]
            shown[w] = shown[w - 1]
            continue
        ok = total_sure[w] >= k
        if ok.any():
            trial = shown.copy()
            trial[w] = ok
            ok &= _classes_pass(near, sure, cat_masks, top, trial, w, k)
        all_masks[w - 1] = ok
        shown[w] = ok
    return cat_masks, all_masks


def _classes_pass(
    near: IntArray,
    sure: IntArray,
    cat_masks: BoolArray,
    top: IntArray,
    shown: BoolArray,
    upto: int,
    k: int,
) -> BoolArray:
    """The classes that all's window ``upto`` adds pass (``shown[upto]`` is the trial).

    Classes: for a category, its rings up to its largest shown window, cut at every window
    shown of the category or of all; and the *pool*, the rings beyond each category's largest
    shown window, of every category together, cut at all's shown windows. Windows of all are
    added shortest first, so the one new cut is at ``upto``: it splits the block of each
    category that spans it, and closes the pool's interval that ends at it; every other class
    was checked when it was made. Only those are checked here (a whole recheck cost 8x more).
    """
    cats, wins1, n = near.shape
    idx = np.arange(n)
    w = upto
    prev_g = np.zeros(n, dtype=np.int64)  # all's largest shown window below w
    for j in range(1, w):
        prev_g[shown[j]] = j
    ok = np.ones(n, dtype=bool)
    for c in range(cats):
        # Only where w falls strictly inside the category's shown range, not on one of its cuts.
        splits = (w < top[c]) & ~cat_masks[c, w - 1]
        if not splits.any():
            continue
        lo = prev_g.copy()  # the block's lower cut: the category's or all's, below w
        for j in range(1, w):
            np.maximum(lo, np.where(cat_masks[c, j - 1], j, 0), out=lo)
        hi = top[c].copy()  # its upper cut: the category's next shown window above w
        for j in range(wins1 - 1, w, -1):
            hi = np.where(cat_masks[c, j - 1], j, hi)
        n_w, d_w = near[c, w], sure[c, w]
        lower = _passes(n_w - near[c, lo, idx], d_w - sure[c, lo, idx], k)
        upper = _passes(near[c, hi, idx] - n_w, sure[c, hi, idx] - d_w, k)
        ok &= ~splits | (lower & upper)
    pool_n = np.zeros(n, dtype=np.int64)
    pool_d = np.zeros(n, dtype=np.int64)
    for c in range(cats):
        inside = top[c] < w
        if not inside.any():
            continue
        lo = np.maximum(prev_g, top[c])
        pool_n += np.where(inside, near[c, w] - near[c, lo, idx], 0)
        pool_d += np.where(inside, sure[c, w] - sure[c, lo, idx], 0)
    ok &= _passes(pool_n, pool_d, k)
    return ok


# --- the reference -------------------------------------------------------------------------
def reference_masks(
    u: npt.ArrayLike,
    v: npt.ArrayLike,
    category: npt.ArrayLike,
    ring: npt.ArrayLike,
    unit: npt.ArrayLike,
    shape: tuple[int, int],
    cats: int,
    wins: int,
    rule: Rule,
    inner: float,
    outer: float,
) -> tuple[BoolArray, BoolArray]:
    """Brute force, for the tests: per cell, the distance of every report's cell centre, and
    the classes found by grouping atoms by the set of shown slices that hold them.

    ``category`` is each report's category index, ``ring`` the index of the shortest window
    that holds it (0-based), ``unit`` its unit weight; positions in cell units.
    """
    uu = np.floor(np.asarray(u, dtype=np.float64)) + 0.5
    vv = np.floor(np.asarray(v, dtype=np.float64)) + 0.5
    cat = np.asarray(category, dtype=np.int64)
    rng = np.asarray(ring, dtype=np.int64)
    un = np.asarray(unit, dtype=np.int64)
    k = rule.min_reports
    cat_masks = np.zeros((cats, wins, *shape), dtype=bool)
    all_masks = np.zeros((wins, *shape), dtype=bool)
    # Slices in decision order: (category or None for all, window index).
    order = [(c, w) for c in range(cats) for w in range(wins)] + [(None, w) for w in range(wins)]
    for row in range(shape[0]):
        for col in range(shape[1]):
            d2 = (uu - (col + 0.5)) ** 2 + (vv - (row + 0.5)) ** 2
            near = d2 <= outer * outer
            sure = d2 <= inner * inner if inner >= 0 else np.zeros_like(near)
            shown: list[tuple[int | None, int]] = []
            for c, w in order:
                members = (rng <= w) & ((cat == c) if c is not None else True)
                if un[members & sure].sum() < k:
                    continue
                trial = [*shown, (c, w)]
                if _reference_classes_pass(cat, rng, un, near, sure, trial, cats, wins, k):
                    shown.append((c, w))
            for c, w in shown:
                if c is None:
                    all_masks[w, row, col] = True
                else:
                    cat_masks[c, w, row, col] = True
    return cat_masks, all_masks


def _reference_classes_pass(
    cat: IntArray,
    rng: IntArray,
    un: IntArray,
    near: BoolArray,
    sure: BoolArray,
    shown: list[tuple[int | None, int]],
    cats: int,
    wins: int,
    k: int,
) -> bool:
    signature: dict[tuple[int, int], frozenset[int]] = {}
    for c in range(cats):
        for r in range(wins):
            signature[(c, r)] = frozenset(
                i for i, (sc, sw) in enumerate(shown) if (sc is None or sc == c) and r <= sw
            )
    classes: dict[frozenset[int], list[tuple[int, int]]] = {}
    for atom, sig in signature.items():
        if sig:
            classes.setdefault(sig, []).append(atom)
    for atoms in classes.values():
        members = np.zeros(cat.shape, dtype=bool)
        for c, r in atoms:
            members |= (cat == c) & (rng == r)
        if (members & near).any() and un[members & sure].sum() < k:
            return False
    return True
