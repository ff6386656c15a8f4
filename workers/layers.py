"""The layers (a category or `all`, by window) a report falls in, and those decided with them.

A layer's privacy masks depend on other layers (``shared.geo.privacy``): a category's windows
on its shorter ones, all's on every category. So what a recompute is asked for grows into
everything decided with it, and layers are decided in one order.
"""

from __future__ import annotations

from datetime import datetime

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import WINDOWS, layer_key, windows_containing


def all_layers() -> list[str]:
    return [layer_key(c, w) for c in (ALL, *sorted(CATEGORY_IDS)) for w in WINDOWS]


def layers_for(category: str, occurred_at: datetime, now: datetime) -> set[str]:
    """The layers that hold a report (``expand_layers`` adds those whose masks follow)."""
    return {layer_key(c, w) for c in (ALL, category) for w in windows_containing(occurred_at, now)}


def expand_layers(by_layer: dict[str, set[str]]) -> dict[str, set[str]]:
    """The layers whose privacy masks follow from the ones asked for (``shared.geo.privacy``), at
    the same partitions: for a category's layer, its longer windows (each window is decided
    after the shorter ones of its category) and every window of all (decided against every
    category). A run of all's layers alone is the fast pass: the windows it leaves (and the
    categories) wait for the background pass, which recomputes all's against them; until
    then the map differs from one recomputed at once no more than it did before the rule
    (new reports are in all, not yet in the other layers)."""
    out = {layer: set(parts) for layer, parts in by_layer.items()}
    wins = list(WINDOWS)
    for layer, parts in by_layer.items():
        category, window = layer.split("|")
        if category == ALL:
            continue
        for later in wins[wins.index(window) :]:
            out.setdefault(layer_key(category, later), set()).update(parts)
        for any_window in wins:
            out.setdefault(layer_key(ALL, any_window), set()).update(parts)
    return out


def decision_order(layer: str) -> tuple[int, str, int]:
    """Categories before all, each by window from the shortest (``shared.geo.privacy``)."""
    category, window = layer.split("|")
    return (category == ALL, category, list(WINDOWS).index(window))
