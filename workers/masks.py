"""Which cells of a step each layer may show: ``shared.geo.privacy``'s rule applied to the
counts around the step, every category and window together (a layer's masks depend on the
others': ``workers.layers``)."""

from __future__ import annotations

import numpy as np

from shared.config.categories import ALL
from shared.geo import privacy, timeprivacy
from shared.geo.tiles import TIME_ATOMS, WINDOWS, Pyramid, layer_key
from shared.store.keys import grid_key
from workers.layers import all_layers
from workers.plan import Step, cells
from workers.steppoints import CATEGORIES, StepReports
from workers.tilecache import TileCache, read_region

_Counts = tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]
"""Categories, their counts and unit counts (C, W, ...), the same by time atom (C, W, T, ...)
or None, and how many categories at the end are unpublished (``privacy.slice_masks``)."""


class Masks:
    def __init__(self, pyramid: Pyramid, rule: privacy.Rule) -> None:
        self._pyramid = pyramid
        self._rule = rule

    def decide(
        self, cache: TileCache, reports: StepReports, step: Step, times: bool = True
    ) -> dict[str, np.ndarray]:
        """Which cells of the step's valid region each layer may show (``shared.geo.privacy``),
        from every category's and window's counts around it: the reports themselves at the
        compute zoom, the stored counts at coarser ones. Categories with no report in the
        step's source show nothing and are left out of the decision (most steps hold few).
        With ``times``, the time slices too (``shared.geo.timeprivacy``), from the time atoms'
        counts; the layers of every time are decided the same either way."""
        zc = self._pyramid.compute_zoom
        r = step.reach
        vh, vw = step.valid.shape
        crop = (r, r + vh, r, r + vw)
        interpolated = step.block.z == zc and zc < self._pyramid.max_zoom
        inner, outer = self._rule.radii(step.sigma, privacy.slack(interpolated))
        pending = 0
        group = 1
        raw_t = units_t = None
        if step.block.z == zc:
            # Decided on blocks of group x group cells, as one cell each: the rule then holds
            # for every point of a block (the slack is a block's), with the circle shrunk by
            # at most 1.4 cells more. Blocks stay under a quarter of sigma; in London (sigma
            # 8.5 cells) 2 x 2 cut a step's decision from 20 to 4 ms (bench/ingest.py).
            group = max(1, int(step.sigma // 4))
            cats, raw_t, units_t = _bin_all(reports, step, group)
            raw, units = raw_t.sum(axis=2), units_t.sum(axis=2)
            slack = privacy.slack(interpolated or group > 1)
            inner, outer = self._rule.radii(step.sigma / group, slack)
            crop = (r // group, -(-(r + vh) // group), r // group, -(-(r + vw) // group))
        else:
            counts = self._stored_counts(cache, step, inner, crop, times)
            if counts is None:
                return hidden(step)
            cats, raw, units, raw_t, units_t, pending = counts
        if not cats and not pending:
            return hidden(step)
        per_cat, per_all = privacy.slice_masks(
            raw, units, self._rule, inner, outer, crop, unpublished=pending
        )
        per_cat_t = per_all_t = None
        if times and raw_t is not None and units_t is not None:
            per_cat_t, per_all_t = timeprivacy.slice_time_masks(
                raw_t, units_t, per_cat, per_all, self._rule.min_reports, inner, outer, crop
            )
        if group > 1:
            # Back to cells: each block's decision for its cells, cut to the valid region.
            off = r % group

            def cells_of(blocks: np.ndarray) -> np.ndarray:
                grown = np.repeat(np.repeat(blocks, group, axis=-2), group, axis=-1)
                return grown[..., off : off + vh, off : off + vw]

            per_cat, per_all = cells_of(per_cat), cells_of(per_all)
            if per_cat_t is not None and per_all_t is not None:
                per_cat_t, per_all_t = cells_of(per_cat_t), cells_of(per_all_t)
        return _named(step, cats, per_cat, per_all, per_cat_t, per_all_t)

    def _stored_counts(
        self, cache: TileCache, step: Step, inner: float, crop: privacy.Crop, times: bool
    ) -> _Counts | None:
        """Coarser zooms: every category's counts around the step from the stored count
        tiles (and, with ``times``, their time atoms'); None where nothing can show."""
        wins = list(WINDOWS)
        totals = [layer_key(ALL, w) for w in wins]
        total = read_region(cache, "c", totals[-1], step.source)
        if not (privacy.disc_sum(total[1], inner, crop) >= self._rule.min_reports).any():
            return None
        tiles = step.source.tiles()
        z = step.block.z
        cache.prefetch(
            grid_key("c", layer, z, x, y)
            for layer in [layer_key(c, ALL) for c in CATEGORIES] + totals
            for x, y in tiles
        )
        cats = [
            c for c in CATEGORIES if read_region(cache, "c", layer_key(c, ALL), step.source).any()
        ]
        cache.prefetch(
            grid_key("c", layer_key(c, w), z, x, y) for c in cats for w in wins for x, y in tiles
        )
        shape = (len(cats), len(wins), *step.source.shape)
        raw = np.zeros(shape, dtype=np.int64)
        units = np.zeros(shape, dtype=np.int64)
        for i, c in enumerate(cats):
            for j, w in enumerate(wins):
                if j and all(
                    cache.same(
                        grid_key("c", layer_key(c, w), z, x, y),
                        grid_key("c", layer_key(c, wins[j - 1]), z, x, y),
                    )
                    for x, y in tiles
                ):
                    # The same bytes as the shorter window's (all its reports are recent):
                    # no decode. Most cities' windows are copies of each other.
                    raw[i, j], units[i, j] = raw[i, j - 1], units[i, j - 1]
                    continue
                raw[i, j], units[i, j] = read_region(cache, "c", layer_key(c, w), step.source)
        # A category's counts here lag all's while its layers wait for the background pass:
        # the reports all has and the categories do not yet show sit in all's pool.
        stacks = np.stack([read_region(cache, "c", layer, step.source) for layer in totals], 1)
        extra = np.maximum(stacks - np.stack([raw.sum(axis=0), units.sum(axis=0)]), 0)
        raw_t = units_t = None
        if times:
            raw_t, units_t, extra_t = _read_times(cache, step, cats, totals)
        pending = 0
        if extra.any():
            raw = np.concatenate([raw, extra[0][None]])
            units = np.concatenate([units, extra[1][None]])
            pending = 1
            if raw_t is not None and units_t is not None:
                raw_t = np.concatenate([raw_t, extra_t[0][None]])
                units_t = np.concatenate([units_t, extra_t[1][None]])
        return cats, raw, units, raw_t, units_t, pending


def _named(
    step: Step,
    cats: list[str],
    per_cat: np.ndarray,
    per_all: np.ndarray,
    per_cat_t: np.ndarray | None,
    per_all_t: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The masks by layer name; every layer not decided here is hidden."""
    wins = list(WINDOWS)
    out = hidden(step)
    out.update({layer_key(ALL, w): per_all[j] for j, w in enumerate(wins)})
    for i, c in enumerate(cats):
        for j, w in enumerate(wins):
            out[layer_key(c, w)] = per_cat[i, j]
    if per_cat_t is not None and per_all_t is not None:
        for j, w in enumerate(wins):
            for t, atom in enumerate(TIME_ATOMS):
                out[f"{layer_key(ALL, w)}|{atom}"] = per_all_t[j, t]
                for i, c in enumerate(cats):
                    out[f"{layer_key(c, w)}|{atom}"] = per_cat_t[i, j, t]
    return out


def _read_times(
    cache: TileCache, step: Step, cats: list[str], totals: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored counts of every time atom of the categories' and all's layers over the
    step's source: (C, W, T, rows, cols) twice, and all's surplus over the categories
    (2, W, T, rows, cols), which sits in the pool like ``decide``'s."""
    wins = list(WINDOWS)
    z = step.block.z
    tiles = step.source.tiles()
    layers = [layer_key(c, w) for c in cats for w in wins] + totals
    present = {
        (layer, x, y)
        for layer in layers
        for x, y in tiles
        if cache.peek(grid_key("c", layer, z, x, y)) is not None
    }
    keys = {
        grid_key("c", f"{layer}|{atom}", z, x, y): (layer, x, y) in present
        for layer in layers
        for atom in TIME_ATOMS
        for x, y in tiles
    }
    cache.assume_missing(key for key, there in keys.items() if not there)
    cache.prefetch(key for key, there in keys.items() if there)
    shape = (len(cats), len(wins), len(TIME_ATOMS), *step.source.shape)
    raw = np.zeros(shape, dtype=np.int64)
    units = np.zeros(shape, dtype=np.int64)
    for i, c in enumerate(cats):
        for j, w in enumerate(wins):
            for t, atom in enumerate(TIME_ATOMS):
                raw[i, j, t], units[i, j, t] = read_region(
                    cache, "c", f"{layer_key(c, w)}|{atom}", step.source
                )
    total = np.stack(
        [
            np.stack(
                [read_region(cache, "c", f"{layer}|{atom}", step.source) for atom in TIME_ATOMS],
                1,
            )
            for layer in totals
        ],
        1,
    )  # (2, W, T, rows, cols)
    extra = np.maximum(total - np.stack([raw.sum(axis=0), units.sum(axis=0)]), 0)
    return raw, units, extra


def _bin_all(
    reports: StepReports, step: Step, group: int = 1
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The categories with reports in the step's source, and their counts and unit counts
    by window and time atom per block of group x group cells:
    (C, W, T, rows / group, cols / group)."""
    arrays = reports.arrays(step)
    rows, cols = step.source.shape
    u, v = cells(step, arrays.lon, arrays.lat)
    with np.errstate(invalid="ignore"):
        inside = (u >= 0) & (u < cols) & (v >= 0) & (v < rows)
    present = np.unique(arrays.cat[inside])
    cats = [CATEGORIES[i] for i in present]
    index = np.full(len(CATEGORIES), -1, dtype=np.intp)
    index[present] = np.arange(present.size)
    spans = len(WINDOWS)
    shape = (len(cats), spans, len(TIME_ATOMS), -(-rows // group), -(-cols // group))
    raw = np.zeros(shape, dtype=np.int64)
    units = np.zeros(shape, dtype=np.int64)
    if cats:
        ci = index[arrays.cat[inside]]
        ri = arrays.ring[inside]
        ui = arrays.unit[inside]
        ti = arrays.time[inside]
        rr = v[inside].astype(np.intp) // group
        cc = u[inside].astype(np.intp) // group
        # Windows are nested: a report counts in its own window and every longer one (added
        # once per window it is in, cheaper than a running sum over mostly empty grids).
        for w in range(spans):
            held = ri <= w
            at = (ci[held], np.full(int(held.sum()), w), ti[held], rr[held], cc[held])
            np.add.at(raw, at, 1)
            np.add.at(units, at, ui[held])
    return cats, raw, units


def hidden(step: Step) -> dict[str, np.ndarray]:
    """Every layer hidden over the step's valid region (one shared array, never written)."""
    shown = np.zeros(step.valid.shape, dtype=bool)
    return dict.fromkeys(all_layers(), shown)
