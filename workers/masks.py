"""Which cells of a step each layer may show: ``shared.geo.privacy``'s rule applied to the
counts around the step, every category and window together (a layer's masks depend on the
others': ``workers.layers``)."""

from __future__ import annotations

import numpy as np

from shared.config.categories import ALL
from shared.geo import privacy
from shared.geo.tiles import WINDOWS, Pyramid, layer_key
from shared.store.keys import grid_key
from workers.layers import all_layers
from workers.plan import Step, cells
from workers.steppoints import CATEGORIES, StepReports
from workers.tilecache import TileCache, read_region


class Masks:
    def __init__(self, pyramid: Pyramid, rule: privacy.Rule) -> None:
        self._pyramid = pyramid
        self._rule = rule

    def decide(self, cache: TileCache, reports: StepReports, step: Step) -> dict[str, np.ndarray]:
        """Which cells of the step's valid region each layer may show (``shared.geo.privacy``),
        from every category's and window's counts around it: the reports themselves at the
        compute zoom, the stored counts at coarser ones. Categories with no report in the
        step's source show nothing and are left out of the decision (most steps hold few)."""
        zc = self._pyramid.compute_zoom
        wins = list(WINDOWS)
        r = step.reach
        vh, vw = step.valid.shape
        crop = (r, r + vh, r, r + vw)
        interpolated = step.block.z == zc and zc < self._pyramid.max_zoom
        inner, outer = self._rule.radii(step.sigma, privacy.slack(interpolated))
        pending = 0
        group = 1
        if step.block.z == zc:
            # Decided on blocks of group x group cells, as one cell each: the rule then holds
            # for every point of a block (the slack is a block's), with the circle shrunk by
            # at most 1.4 cells more. Blocks stay under a quarter of sigma; in London (sigma
            # 8.5 cells) 2 x 2 cut a step's decision from 20 to 4 ms (bench/ingest.py).
            group = max(1, int(step.sigma // 4))
            cats, raw, units = _bin_all(reports, step, group)
            slack = privacy.slack(interpolated or group > 1)
            inner, outer = self._rule.radii(step.sigma / group, slack)
            crop = (r // group, -(-(r + vh) // group), r // group, -(-(r + vw) // group))
        else:
            totals = [layer_key(ALL, w) for w in wins]
            total = read_region(cache, "c", totals[-1], step.source)
            if not (privacy.disc_sum(total[1], inner, crop) >= self._rule.min_reports).any():
                return hidden(step)
            tiles = step.source.tiles()
            z = step.block.z
            cache.prefetch(
                grid_key("c", layer, z, x, y)
                for layer in [layer_key(c, ALL) for c in CATEGORIES] + totals
                for x, y in tiles
            )
            cats = [
                c
                for c in CATEGORIES
                if read_region(cache, "c", layer_key(c, ALL), step.source).any()
            ]
            cache.prefetch(
                grid_key("c", layer_key(c, w), z, x, y)
                for c in cats
                for w in wins
                for x, y in tiles
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
            if extra.any():
                raw = np.concatenate([raw, extra[0][None]])
                units = np.concatenate([units, extra[1][None]])
                pending = 1
        if not cats and not pending:
            return hidden(step)
        per_cat, per_all = privacy.slice_masks(
            raw, units, self._rule, inner, outer, crop, unpublished=pending
        )
        if group > 1:
            # Back to cells: each block's decision for its cells, cut to the valid region.
            off = r % group
            per_cat = np.repeat(np.repeat(per_cat, group, axis=-2), group, axis=-1)
            per_cat = per_cat[..., off : off + vh, off : off + vw]
            per_all = np.repeat(np.repeat(per_all, group, axis=-2), group, axis=-1)
            per_all = per_all[..., off : off + vh, off : off + vw]
        out = hidden(step)
        out.update({layer_key(ALL, w): per_all[j] for j, w in enumerate(wins)})
        for i, c in enumerate(cats):
            for j, w in enumerate(wins):
                out[layer_key(c, w)] = per_cat[i, j]
        return out


def _bin_all(
    reports: StepReports, step: Step, group: int = 1
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The categories with reports in the step's source, and their counts and unit counts
    by window per block of group x group cells: (C, W, rows / group, cols / group)."""
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
    shape = (len(cats), spans, -(-rows // group), -(-cols // group))
    raw = np.zeros(shape, dtype=np.int64)
    units = np.zeros(shape, dtype=np.int64)
    if cats:
        ci = index[arrays.cat[inside]]
        ri = arrays.ring[inside]
        ui = arrays.unit[inside]
        rr = v[inside].astype(np.intp) // group
        cc = u[inside].astype(np.intp) // group
        # Windows are nested: a report counts in its own window and every longer one (added
        # once per window it is in, cheaper than a running sum over mostly empty grids).
        for w in range(spans):
            held = ri <= w
            at = (ci[held], np.full(int(held.sum()), w), rr[held], cc[held])
            np.add.at(raw, at, 1)
            np.add.at(units, at, ui[held])
    return cats, raw, units


def hidden(step: Step) -> dict[str, np.ndarray]:
    """Every layer hidden over the step's valid region (one shared array, never written)."""
    shown = np.zeros(step.valid.shape, dtype=bool)
    return dict.fromkeys(all_layers(), shown)
