"""The layers (a category or `all`, by window) a report falls in, and those decided with them.

A layer's privacy masks depend on other layers (``shared.geo.privacy``): a category's windows
on its shorter ones, all's on every category. So what a recompute is asked for grows into
everything decided with it, and layers are decided in one order.
"""

from __future__ import annotations

from datetime import datetime

from shared.config.categories import ALL, CATEGORY_IDS
from shared.geo.tiles import WINDOWS, layer_key, parse_layer, time_layers, windows_containing


def all_layers(times: bool = True) -> list[str]:
    """Every stored layer: each category and all by window, and (``times``) their time atoms."""
    plain = [layer_key(c, w) for c in (ALL, *sorted(CATEGORY_IDS)) for w in WINDOWS]
    return plain + [t for layer in plain for t in time_layers(layer)] if times else plain


def layers_for(category: str, occurred_at: datetime, now: datetime) -> set[str]:
    """The layers that hold a report (``expand_layers`` adds those whose masks follow)."""
    return {layer_key(c, w) for c in (ALL, category) for w in windows_containing(occurred_at, now)}


def expand_layers(by_layer: dict[str, set[str]], times: bool = True) -> dict[str, set[str]]:
    """The layers whose privacy masks follow from the ones asked for (``shared.geo.privacy``), at
    the same partitions: for a category's layer, its longer windows (each window is decided
    after the shorter ones of its category) and every window of all (decided against every
    category). A run of all's layers alone is the fast pass: the windows it leaves (and the
    categories) wait for the background pass, which recomputes all's against them; until
    then the map differs from one recomputed at once no more than it did before the rule
    (new reports are in all, not yet in the other layers)."""
    out: dict[str, set[str]] = {}
    for layer, parts in by_layer.items():
        out.setdefault(parse_layer(layer).parent, set()).update(parts)
    wins = list(WINDOWS)
    for layer, parts in list(out.items()):
        category, window = layer.split("|")
        if category == ALL:
            continue
        for later in wins[wins.index(window) :]:
            out.setdefault(layer_key(category, later), set()).update(parts)
        for any_window in wins:
            out.setdefault(layer_key(ALL, any_window), set()).update(parts)
    if times:
        # A time slice's masks follow from every layer's at its cells, and every layer's
        # classes (``shared.geo.timeprivacy``): a change anywhere there redoes them all.
        for layer, parts in list(out.items()):
            for timed in time_layers(layer):
                out.setdefault(timed, set()).update(parts)
    return out


def decision_order(layer: str) -> tuple[bool, str, int, str]:
    """Categories before all, each by window from the shortest (``shared.geo.privacy``); a
    layer's time slices after it."""
    parsed = parse_layer(layer)
    return (parsed.category == ALL, parsed.category, list(WINDOWS).index(parsed.window), layer)
