"""Disclosure control for the time slices: which cells of a layer sliced by light and days
(``shared.geo.tiles.TIME_ATOMS``) may show a value, given what the layers of every time show.

Pure array code, after ``shared.geo.privacy`` has decided the layers of every time (its rule and
classes are not changed by this: the map of every time is the same with or without slices).

The rule, for a cell (``privacy``'s circles and ``k``): the layers of every time that show a
value there split the reports into *classes* (``privacy``, rule 2). A time slice of a layer
may show a value only where

1. the layer itself shows one there,
2. at least ``k`` distinct submitters of the slice are surely near (the primary rule), and
3. *every* class, cut into the four time atoms, passes: each of its atoms holds no report near
   the cell or at least ``k`` distinct submitters surely near it.

Why that is enough: every shown time slice is a union of (class, atom) pieces (it slices a shown
layer, and a shown layer is a union of classes), and so is every shown layer. Any sum or
difference of shown slices of any kind is then constant on each piece, so the classes of the
whole published family are unions of pieces, and a union of passing pieces passes (a piece with
a report near holds ``k`` submitters). Point 3 is decided per cell, not per slice: it is the
same set of pieces for every slice, so whether a cell's time slices may show depends on the
cell alone, and one failing piece hides every time slice there. That errs towards hiding (a
slice that spans the failing piece's atom only through other classes could have shown), but it
cannot be undone by any combination of slices, which a per-slice greedy would have to prove for
36 more slices per layer (4 atoms, summed on read into light-only and days-only filters).
"""

from __future__ import annotations

import numpy as np

from shared.geo.privacy import BoolArray, Crop, IntArray, cumulative_disc


def time_masks(
    near: IntArray,
    sure: IntArray,
    cat_masks: BoolArray,
    all_masks: BoolArray,
    k: int,
) -> tuple[BoolArray, BoolArray]:
    """Masks of the time slices over ``N`` cells.

    ``near`` and ``sure``: ``(C, W + 1, T, N)`` disc sums per category, cumulative window (index
    0 the empty window) and time atom, of report counts in the grown circle and of unit weights
    in the shrunk one (``privacy.slice_masks``'s ``near``/``sure``, one per atom). ``cat_masks``
    ``(C, W, N)`` and ``all_masks`` ``(W, N)``: what the layers of every time show (rows of
    unpublished categories all False). Returns ``(C, W, T, N)`` and ``(W, T, N)``.
    """
    cats, wins1 = near.shape[:2]
    wins = wins1 - 1
    if cats * wins + wins > 64:
        raise ValueError("too many slices for a 64-bit class signature")
    ok = pieces_pass(near, sure, cat_masks, all_masks, k)
    cum_sure = sure[:, 1:]  # (C, W, T, N)
    cat_t = cat_masks[:, :, None, :] & ok & (cum_sure >= k)
    all_t = all_masks[:, None, :] & ok & (cum_sure.sum(axis=0) >= k)
    return cat_t, all_t


def pieces_pass(
    near: IntArray, sure: IntArray, cat_masks: BoolArray, all_masks: BoolArray, k: int
) -> BoolArray:
    """Per cell: whether every (class, atom) piece passes (point 3 of the rule).

    A class is the atoms (a category x a ring of ages) with one signature, the set of shown
    layers that hold them, kept as an exact bit set: bit ``c * W + w`` for category c's window
    w, bit ``C * W + w`` for all's. Per cell the atoms are sorted by signature and each run of
    equal signatures summed, per time atom (a few whole-array operations; the signatures are
    exact, so no two classes are ever merged)."""
    cats, wins1, times, n = near.shape
    wins = wins1 - 1
    bits = np.zeros((cats, wins, n), dtype=np.uint64)
    for c in range(cats):
        for w in range(wins):
            bits[c, w] = np.where(cat_masks[c, w], np.uint64(1) << np.uint64(c * wins + w), 0)
    all_bits = np.zeros((wins, n), dtype=np.uint64)
    for w in range(wins):
        all_bits[w] = np.where(all_masks[w], np.uint64(1) << np.uint64(cats * wins + w), 0)
    # A ring r is in every window w >= r: its signature ORs the bits of those windows.
    sig = np.zeros((cats, wins, n), dtype=np.uint64)
    acc_all = np.zeros(n, dtype=np.uint64)
    acc = np.zeros((cats, n), dtype=np.uint64)
    for r in range(wins - 1, -1, -1):
        acc_all |= all_bits[r]
        acc |= bits[:, r]
        sig[:, r] = acc | acc_all
    ring_near = np.diff(near, axis=1)  # (C, W, T, N): the reports of each ring alone
    ring_sure = np.diff(sure, axis=1)
    atoms = cats * wins
    sig = sig.reshape(atoms, n)
    ring_near = ring_near.reshape(atoms, times, n)
    ring_sure = ring_sure.reshape(atoms, times, n)
    order = np.argsort(sig, axis=0, kind="stable")
    sig = np.take_along_axis(sig, order, axis=0)
    cs_near = np.cumsum(np.take_along_axis(ring_near, order[:, None, :], axis=0), axis=0)
    cs_sure = np.cumsum(np.take_along_axis(ring_sure, order[:, None, :], axis=0), axis=0)
    idx = np.arange(atoms)[:, None]
    starts = np.ones((atoms, n), dtype=bool)
    starts[1:] = sig[1:] != sig[:-1]
    ends = np.ones((atoms, n), dtype=bool)
    ends[:-1] = sig[1:] != sig[:-1]
    first = np.maximum.accumulate(np.where(starts, idx, 0), axis=0)  # each run's first atom
    before = first - 1
    prev_near = np.where(
        (before >= 0)[:, None, :],
        np.take_along_axis(cs_near, np.maximum(before, 0)[:, None, :], axis=0),
        0,
    )
    prev_sure = np.where(
        (before >= 0)[:, None, :],
        np.take_along_axis(cs_sure, np.maximum(before, 0)[:, None, :], axis=0),
        0,
    )
    class_near = cs_near - prev_near
    class_sure = cs_sure - prev_sure
    passes = (class_near == 0) | (class_sure >= k)
    checked = (ends & (sig != 0))[:, None, :]
    return np.asarray((passes | ~checked).all(axis=(0, 1)))


def reference_pass(
    cat: IntArray,
    ring: IntArray,
    time: IntArray,
    unit: IntArray,
    near: BoolArray,
    sure: BoolArray,
    shown: list[tuple[int | None, int, int | None]],
    k: int,
) -> bool:
    """Brute force, for the tests: whether every class of a published family passes at one
    cell. ``shown`` lists slices as (category or None for all, window index, time atom or None
    for every time); reports by category, ring, time atom, unit weight, and whether each is
    near / surely near the cell."""
    keys: dict[tuple[int, int, int], frozenset[int]] = {}
    for i in range(len(cat)):
        atom = (int(cat[i]), int(ring[i]), int(time[i]))
        keys[atom] = frozenset(
            j
            for j, (sc, sw, st) in enumerate(shown)
            if (sc is None or sc == atom[0]) and atom[1] <= sw and (st is None or st == atom[2])
        )
    classes: dict[frozenset[int], list[int]] = {}
    for i in range(len(cat)):
        sig = keys[(int(cat[i]), int(ring[i]), int(time[i]))]
        if sig:
            classes.setdefault(sig, []).append(i)
    for members in classes.values():
        m = np.array(members)
        if near[m].any() and unit[m][sure[m]].sum() < k:
            return False
    return True


def slice_time_masks(
    raw: IntArray,
    units: IntArray,
    cat_masks: BoolArray,
    all_masks: BoolArray,
    k: int,
    inner: float,
    outer: float,
    crop: Crop,
) -> tuple[BoolArray, BoolArray]:
    """``time_masks`` over a grid: ``raw`` and ``units`` are ``(C, W, T, H, X)`` counts (windows
    cumulative), ``cat_masks`` ``(C, W, ...)`` and ``all_masks`` ``(W, ...)`` over the cells of
    ``crop`` (``privacy.slice_masks``'s answer). Only cells where some layer shows are looked at:
    no time slice shows anywhere else."""
    cats, wins, times = raw.shape[:3]
    shape = all_masks.shape[1:]
    cat_t = np.zeros((cats, wins, times, *shape), dtype=bool)
    all_t = np.zeros((wins, times, *shape), dtype=bool)
    cells = np.flatnonzero(all_masks.any(axis=0) | cat_masks.any(axis=(0, 1)))
    if cells.size == 0:
        return cat_t, all_t
    grid = raw.shape[3:]
    by_time = (cats * times, wins, *grid)
    near = cumulative_disc(raw.transpose(0, 2, 1, 3, 4).reshape(by_time), outer, crop, cells)
    sure = cumulative_disc(units.transpose(0, 2, 1, 3, 4).reshape(by_time), inner, crop, cells)
    near = near.reshape(cats, times, wins + 1, -1).transpose(0, 2, 1, 3)
    sure = sure.reshape(cats, times, wins + 1, -1).transpose(0, 2, 1, 3)
    flat_cat = cat_masks.reshape(cats, wins, -1)[:, :, cells]
    flat_all = all_masks.reshape(wins, -1)[:, cells]
    ct, at = time_masks(near, sure, flat_cat, flat_all, k)
    cat_t.reshape(cats, wins, times, -1)[..., cells] = ct
    all_t.reshape(wins, times, -1)[..., cells] = at
    return cat_t, all_t
