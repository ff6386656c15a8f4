"""Density grids to PNG tiles: a colour-blind-safe sequential map with transparency.

Colours come from viridis (perceptually uniform, readable with every common colour-vision
deficiency and in greyscale), evaluated from its published polynomial fit so no plotting
library is needed. The scale is logarithmic and anchored to the peak density of one report at
the zoom's bandwidth, so a colour means the same concentration of reports at every zoom.
"""

from __future__ import annotations

import math
import struct
import zlib
from functools import lru_cache

import numpy as np

_VIRIDIS = np.array(
    [
        (0.2777273272234177, 0.005407344544966578, 0.3340998053353061),
        (0.1050930431085774, 1.404613529898575, 1.384590162594685),
        (-0.3308618287255563, 0.214847559468213, 0.09509516302823659),
        (-4.634230498983486, -5.799100973351585, -19.33244095627987),
        (6.228269936347081, 14.17993336680509, 56.69055260068105),
        (4.776384997670288, -13.74514537774601, -65.35303263337234),
        (-5.435455855934631, 4.645852612178535, 26.3124352495832),
    ]
)
SCALE_LOW = 0.5
SCALE_HIGH = 300.0
"""The colour ramp spans 0.5x to 300x the peak density of a single report at the bandwidth."""


@lru_cache(maxsize=1)
def palette() -> np.ndarray:
    """256 RGBA entries; alpha rises with density so faint tails fade into the base map."""
    t = np.linspace(0.0, 1.0, 256)
    rgb = np.zeros((256, 3))
    for coeffs in _VIRIDIS[::-1]:
        rgb = rgb * t[:, None] + coeffs
    # From transparent at the low end, so the edge of the coloured area fades, not steps.
    alpha = np.clip(0.95 * np.sqrt(t), 0.0, 0.95)
    rgba = np.concatenate([np.clip(rgb, 0, 1), alpha[:, None]], axis=1)
    out: np.ndarray = np.rint(rgba * 255).astype(np.uint8)
    return out


def scale_for(bandwidth_m: float) -> tuple[float, float]:
    """(low, high) density in reports per km^2 that the ramp spans at this bandwidth."""
    one_report_peak = 1.0 / (2 * math.pi * (bandwidth_m / 1000.0) ** 2)
    return SCALE_LOW * one_report_peak, SCALE_HIGH * one_report_peak


def colorize(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """HxWx4 uint8; cells at or below `low` are fully transparent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(np.maximum(values, 1e-300) / low) / math.log(high / low)
    idx = np.clip(np.rint(t * 255), 0, 255).astype(np.intp)
    rgba = palette()[idx]
    rgba[values <= low] = 0
    return rgba


def encode_png(rgba: np.ndarray) -> bytes:
    height, width, _ = rgba.shape
    raw = np.zeros((height, width * 4 + 1), dtype=np.uint8)
    raw[:, 1:] = rgba.reshape(height, width * 4)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


@lru_cache(maxsize=1)
def transparent_tile() -> bytes:
    """The one shared answer for every empty area."""
    return encode_png(np.zeros((256, 256, 4), dtype=np.uint8))
