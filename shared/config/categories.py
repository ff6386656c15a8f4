"""The fixed list of report categories.

Ids are part of the public API (clients post them and filter by them) and of stored grid keys,
so they never change meaning; labels may be reworded.
"""

from __future__ import annotations

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("harassment", "Harassment"),
    ("poor_lighting", "Poor lighting"),
    ("theft", "Theft or robbery"),
    ("assault", "Assault or violence"),
    ("unsafe_infrastructure", "Unsafe road or infrastructure"),
    ("other", "Other"),
)

CATEGORY_IDS: frozenset[str] = frozenset(cid for cid, _ in CATEGORIES)

ALL = "all"
"""The layer that holds every category."""


def as_json() -> list[dict[str, str]]:
    return [{"id": cid, "label": label} for cid, label in CATEGORIES]
