"""Tokens as every view draws them: the per-token data columns the front end reads
(`js/src/tokens.js`), and a token's static rendering (coloured span, numbers in its
`title`). The token view, the trace view and the comparison view share these."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from ...core.results import TokenInfo
from . import static

#: the per-token columns (read by js/src/tokens.js), shared by every view of tokens
TOKEN_COLUMNS = {
    "text": "str", "token_id": "i4", "logprob": "f8", "constrained_logprob": "f8",
    "rank": "i4", "entropy": "f8",
    "alt_count": "i4", "alt_text": "str", "alt_token_id": "i4", "alt_logprob": "f8",
    "alt_blocked": "u1",
    "allowed_count": "i4", "allowed_text": "str", "allowed_token_id": "i4",
    "allowed_logprob": "f8",
}

_TOKEN_EDGE = "box-shadow: inset -1px 0 0 rgba(128,128,128,0.55)"


def _nan(x: Optional[float]) -> float:
    return math.nan if x is None else float(x)


def shown_logprob(token: TokenInfo) -> float:
    """The log-probability a token is coloured by: among the allowed tokens under a
    constraint, else the model's own."""
    constrained = getattr(token, "constrained_logprob", None)
    return token.logprob if constrained is None else constrained


def token_columns(tokens: Sequence[TokenInfo]) -> dict[str, Any]:
    """The `TOKEN_COLUMNS` of `tokens`: what every view of tokens draws and hovers."""
    alternatives = [a for t in tokens for a in t.top]
    allowed = [a for t in tokens for a in getattr(t, "allowed", ())]
    return {
        "text": [t.text for t in tokens],
        "token_id": np.array([t.token_id for t in tokens], dtype="<i4"),
        "logprob": np.array([t.logprob for t in tokens], dtype="<f8"),
        "constrained_logprob": np.array([_nan(getattr(t, "constrained_logprob", None))
                                         for t in tokens], dtype="<f8"),
        "rank": np.array([t.rank or 0 for t in tokens], dtype="<i4"),
        "entropy": np.array([_nan(t.entropy) for t in tokens], dtype="<f8"),
        "alt_count": np.array([len(t.top) for t in tokens], dtype="<i4"),
        "alt_text": [a.text for a in alternatives],
        "alt_token_id": np.array([a.token_id for a in alternatives], dtype="<i4"),
        "alt_logprob": np.array([a.logprob for a in alternatives], dtype="<f8"),
        # set by constrained decoding: the model proposed it, the constraint refused it
        "alt_blocked": np.array([bool(getattr(a, "blocked", False)) for a in alternatives],
                                dtype="u1"),
        "allowed_count": np.array([len(getattr(t, "allowed", ())) for t in tokens], dtype="<i4"),
        "allowed_text": [a.text for a in allowed],
        "allowed_token_id": np.array([a.token_id for a in allowed], dtype="<i4"),
        "allowed_logprob": np.array([a.logprob for a in allowed], dtype="<f8"),
    }


def token_title(token: TokenInfo) -> str:
    """A token's numbers and alternatives as text (the static rendering's `title`)."""
    parts = []
    constrained = getattr(token, "constrained_logprob", None)
    if constrained is not None:
        parts.append(f"p {static.format_percent(math.exp(constrained))} among the allowed tokens")
    parts += [f"{'model' + chr(39) + 's own p' if constrained is not None else 'p'} "
              f"{static.format_percent(token.prob)}",
              f"logprob {static.format_number(token.logprob)}",
              f"rank {token.rank or '–'}",
              f"entropy {static.format_number(token.entropy, 3)} nats"]
    lines = [" · ".join(parts)]
    allowed = getattr(token, "allowed", ())
    if allowed:
        lines.append("allowed: " + ", ".join(
            f"{static.marked(a.text)} {static.format_percent(math.exp(a.logprob))}"
            for a in allowed))
    if token.top:
        lines.append("model's top: " + ", ".join(
            f"{static.marked(a.text)} {static.format_percent(math.exp(a.logprob))}"
            + (" (blocked)" if getattr(a, "blocked", False) else "") for a in token.top))
    return "\n".join(lines)


def token_html(token: TokenInfo) -> str:
    """A token as the static renderings show it: its text, coloured, numbers in `title`
    (a token made only of whitespace shows its marks, so it can be seen and hovered)."""
    inner = static.text_html(token.text, markers=static.blank(token.text), line_breaks=True)
    return static.coloured(inner, shown_logprob(token), token_title(token), _TOKEN_EDGE)


def totals(tokens: Sequence[TokenInfo]) -> str:
    """A sequence's total log-probability and perplexity, as the view shows them."""
    total = float(sum(t.logprob for t in tokens))
    if not tokens:
        return ""
    return (f"Σ logprob {static.format_number(total, 2)} · perplexity "
            f"{static.format_number(math.exp(-total / len(tokens)), 2)}")
