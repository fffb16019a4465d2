"""The one colour scale of every view (widgets, static HTML, `to_html()`), from
`scale.json`, which `js/src/colours.js` reads too.

A log-probability picks one of `bins` colours: the bin is
`floor((logprob - lo) / (hi - lo) * (bins - 1) + 0.5)`, clamped, and each bin's colour is
interpolated between the stops and rounded half up, so Python and JavaScript compute the
same colour with the same IEEE arithmetic. Text on a bin is whichever of near-black and
white contrasts more with it (WCAG), so every token stays legible in light and dark themes.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Optional

DARK_TEXT = "#111111"
LIGHT_TEXT = "#ffffff"


@functools.lru_cache(maxsize=1)
def scale() -> dict[str, Any]:
    """The scale's definition (domain, stops, bins, ticks)."""
    return json.loads((Path(__file__).with_name("scale.json")).read_text(encoding="utf-8"))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(rgb: tuple[int, int, int]) -> str:
    """Near-black or white, whichever contrasts more with the background `rgb`."""
    lum = _luminance(rgb)
    dark = (lum + 0.05) / (_luminance(_rgb(DARK_TEXT)) + 0.05)
    light = (1.05) / (lum + 0.05)
    return DARK_TEXT if dark >= light else LIGHT_TEXT


@functools.lru_cache(maxsize=1)
def table() -> tuple[tuple[str, str], ...]:
    """(background, text) hex colours of every bin, from least to most likely."""
    spec = scale()
    stops = [_rgb(s) for s in spec["stops"]]
    bins = spec["bins"]
    colours = []
    for i in range(bins):
        position = i / (bins - 1) * (len(stops) - 1)
        k = min(math.floor(position), len(stops) - 2)
        f = position - k
        rgb = tuple(math.floor(a + (b - a) * f + 0.5) for a, b in zip(stops[k], stops[k + 1]))
        colours.append(("#%02x%02x%02x" % rgb, text_colour(rgb)))
    return tuple(colours)


def bin_of(logprob: float) -> Optional[int]:
    """The bin of a log-probability (-inf: the first), or None for NaN / unknown."""
    if logprob is None or math.isnan(logprob):
        return None
    lo, hi = scale()["domain"]
    bins = scale()["bins"]
    if logprob == -math.inf:
        return 0
    index = math.floor((logprob - lo) / (hi - lo) * (bins - 1) + 0.5)
    return min(bins - 1, max(0, index))


def logprob_colour(logprob: float) -> Optional[tuple[str, str]]:
    """(background, text) colour of a token with this log-probability, or None."""
    index = bin_of(logprob)
    return None if index is None else table()[index]

