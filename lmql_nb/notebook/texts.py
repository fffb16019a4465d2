"""Results as plain text: what text front ends, nbval and a view's text/plain show.
Shared by the views and the magics' text outputs."""

from __future__ import annotations

from typing import Sequence

from ..query.trace import Trace
from ..core.results import Generation


def plain_text(generations: Sequence[Generation]) -> str:
    """The completions as text: the one completion, or each under a "[i]" header."""
    if len(generations) == 1:
        return generations[0].text
    return "\n".join(f"[{i}] {g.text}" for i, g in enumerate(generations, 1))


def trace_text(traces: Sequence[Trace]) -> str:
    """The rows' prompts as text: the one prompt, or each under a "[i]" header."""
    if len(traces) == 1:
        return traces[0].prompt
    return "\n".join(f"[{i}] {t.prompt}" for i, t in enumerate(traces, 1))
