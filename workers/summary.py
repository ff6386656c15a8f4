"""Where the page opens when its URL names no view: the densest cell the map shows.

Kept by the worker after each recompute run (``refresh``), read by the web
(``web.resources.meta``), so no request ever reads reports. Privacy: it is taken from the
stored `all` category, all-time density tiles at ``SUMMARY_ZOOM`` (cells ~300 m), which are
already thresholded (hidden cells are stored as zero), so it tells nothing the map at that zoom
does not show. One meta item holds each touched tile's densest cell, so a run reads only the
tiles its partitions fall in (one per ~40 km square) and a tile that emptied drops out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.geo import gridcodec
from shared.geo.tiles import APRON, TILE, Pyramid, layer_key, world_to_lonlat
from shared.store.grids import GridRepository
from shared.store.keys import grid_key, parse_partition

SUMMARY_ZOOM = 9
"""Tiles whose cells are ~300 m at the equator: coarse enough to reveal no single place, fine
enough to open on a district; at or below the compute zoom (11 with 200 m bandwidth) and one
above the default overview zoom (8), so every run refreshes these tiles of the `all` layer."""
OPEN_ZOOM = 12
"""The map zoom the page opens at over that cell: a few kilometres across."""
LAYER = layer_key("all", "all")


@dataclass(frozen=True)
class Summary:
    lat: float
    lon: float
    zoom: int
    value: float


def densest_cell(grid: np.ndarray) -> tuple[int, int, float] | None:
    """(row, col, value) of the largest shown cell of a tile (apron cropped), None if empty.

    Hidden cells are zero in stored tiles; non-finite or non-positive values count as hidden."""
    core = np.asarray(grid, dtype=np.float64)
    if core.shape[0] > TILE:
        core = core[APRON:-APRON, APRON:-APRON]
    shown = np.where(np.isfinite(core) & (core > 0), core, 0.0)
    index = int(np.argmax(shown))
    row, col = divmod(index, shown.shape[1])
    value = float(shown[row, col])
    return (row, col, value) if value > 0 else None


def cell_centre(z: int, x: int, y: int, row: int, col: int) -> tuple[float, float]:
    """(lat, lon) of a cell's centre in tile z/x/y."""
    n = TILE << z
    lon, lat = world_to_lonlat((x * TILE + col + 0.5) / n, (y * TILE + row + 0.5) / n)
    return float(lat), float(lon)


def tiles_of(partitions: Iterable[str], zoom: int) -> set[tuple[int, int]]:
    """The tiles at `zoom` that the partitions (``z/x/y``, finer) fall in."""
    out = set()
    for key in partitions:
        z, x, y = parse_partition(key)
        dz = max(0, z - zoom)
        out.add((x >> dz, y >> dz))
    return out


def pick(cells: dict[str, list[float]], max_zoom: int) -> Summary | None:
    """The densest of the kept cells (``"x/y": [value, lat, lon]``)."""
    if not cells:
        return None
    value, lat, lon = max(cells.values())
    return Summary(lat, lon, min(OPEN_ZOOM, max_zoom), value)


def refresh(grids: GridRepository, pyramid: Pyramid, partitions: Iterable[str]) -> Summary | None:
    """Brings the kept cells of the tiles these partitions touch up to date; the new pick."""
    zoom = min(SUMMARY_ZOOM, pyramid.compute_zoom)
    touched = tiles_of(partitions, zoom)
    kept = load(grids)
    cells: dict[str, list[float]] = kept.get("cells", {}) if kept.get("zoom") == zoom else {}
    if touched:
        keys = {grid_key("d", LAYER, zoom, x, y): (x, y) for x, y in touched}
        blobs = grids.get_many(keys, consistent=True)
        for key, (x, y) in keys.items():
            found = blobs.get(key)
            best = densest_cell(gridcodec.decode(found[0])) if found else None
            if best is None:
                cells.pop(f"{x}/{y}", None)
            else:
                row, col, value = best
                lat, lon = cell_centre(zoom, x, y, row, col)
                cells[f"{x}/{y}"] = [value, round(lat, 5), round(lon, 5)]
    chosen = pick(cells, pyramid.max_zoom)
    body = {"zoom": zoom, "cells": cells}
    if chosen is not None:
        body["open"] = {"lat": chosen.lat, "lon": chosen.lon, "zoom": chosen.zoom}
    grids.put_summary(json.dumps(body, separators=(",", ":")))
    return chosen


def load(grids: GridRepository) -> dict:
    raw = grids.get_summary()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
