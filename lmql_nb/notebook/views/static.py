"""Pieces of the static renderings: HTML with inline styles only (no classes a page must
define, no script), which survives nbconvert, nbviewer, GitHub and JupyterLab's sanitizer.
Model text is escaped; numbers are formatted as the widgets format them."""

from __future__ import annotations

import html
import math
import re
from typing import Optional

from .colours import logprob_colour, scale

FONT = ("font-family: var(--jp-ui-font-family, system-ui, sans-serif); "
        "font-size: var(--jp-ui-font-size1, 13px); line-height: 1.5")
CODE = "font-family: var(--jp-code-font-family, ui-monospace, Menlo, Consolas, monospace)"
MUTED = "opacity: 0.7"

_MARKS = {" ": "·", "\t": "→", "\n": "↵", "\r": "\\r"}
_INVISIBLE = re.compile("[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f"
                        "\u2028\u2029\u2060\ufeff]")


def escape(text: str) -> str:
    """`text` as HTML text (quotes too: safe in attributes)."""
    return html.escape(text, quote=True)


def format_number(x: Optional[float], digits: int = 4) -> str:
    """As the widgets show numbers: fixed digits, a real minus sign, "–" when unknown."""
    if x is None or math.isnan(x):
        return "–"
    if x == -math.inf:
        return "−∞"
    return f"{x:.{digits}f}".replace("-", "−")


def format_age(seconds: float) -> str:
    """How old something is, as the views say it: "8 s", "3 min", "2 h", "4 days"."""
    if seconds < 1:
        return "<1 s"
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    days = int(seconds // 86400)
    return f"{days} day{'' if days == 1 else 's'}"


def cached_text(age: float) -> str:
    """The status of a result that came from the result cache (`age`: of its entry)."""
    return f"from the result cache (computed {format_age(age)} ago)"


def format_percent(p: float) -> str:
    """As the widgets show probabilities."""
    if math.isnan(p):
        return "–"
    if 0 < p < 0.0001:
        return "<0.01%"
    return f"{100 * p:.{1 if p >= 0.1 else 2}f}%"


def _escape_form(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def blank(text: str) -> bool:
    """True for text made only of whitespace (a "\\n" hole, a " " token): shown with its
    marks even when whitespace is not marked, so that it can be seen and hovered."""
    return text != "" and text.isspace()


def marked(text: str) -> str:
    """`text` as plain text with its whitespace as marks (" very" -> "·very"), the one
    notation of tokens in labels and titles, as the live views write them."""
    return "".join(_MARKS.get(ch) or (_escape_form(ch) if _INVISIBLE.match(ch) else ch)
                   for ch in text) or "◌"


def text_html(text: str, markers: bool = False, line_breaks: bool = False) -> str:
    """Untrusted `text` as HTML: natural (real whitespace, for `white-space: pre-wrap`), or
    with whitespace `markers` (a marked newline still breaks the line with `line_breaks`);
    control and zero-width characters always as escapes."""
    if text == "":
        return f'<span style="{MUTED}">◌</span>'
    out = []
    for ch in text:
        if _INVISIBLE.match(ch) or (markers and ch in _MARKS):
            out.append(f'<span style="{MUTED}">{escape(_MARKS.get(ch) or _escape_form(ch))}</span>')
            if ch == "\n" and line_breaks:
                out.append("\n")
        else:
            out.append(escape(ch))
    return "".join(out)


def coloured(inner: str, logprob: float, title: str, extra: str = "") -> str:
    """A span painted with the colour scale for `logprob`, with a hover `title`."""
    colour = logprob_colour(logprob)
    paint = "" if colour is None else f"background-color: {colour[0]}; color: {colour[1]}; "
    return f'<span style="{paint}{extra}" title="{escape(title)}">{inner}</span>'


def legend_html() -> str:
    """The colour scale's legend: swatches at the ticks, labelled with probabilities."""
    spec = scale()
    swatches = " ".join(
        coloured(escape(label), value, f"log-probability {format_number(value, 2)}",
                 "padding: 0 4px; border-radius: 2px")
        for value, label in [(spec["domain"][0],
                              f"≤ {format_number(spec['domain'][0], 0)} logprob"),
                             *spec["ticks"]])
    return (f'<div style="{MUTED}; font-size: 0.9em; margin-bottom: 4px">token colour = '
            f'probability (log scale): {swatches}</div>')
