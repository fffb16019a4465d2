"""`ScoringHeatmap`: a `ScoringResult` as values x tokens, with totals and probabilities."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import traitlets

from ...scoring import AGGREGATIONS, ScoringResult
from . import static
from .base import LmqlWidget

SORT_KEYS = ("value", "tokens", "sum", "mean", "normalized", "prob")
COLUMNS = {"value": "str", "token_count": "i4", "token": "str", "token_logprob": "f8",
           **{f"score_{agg}": "f8" for agg in AGGREGATIONS}}
_SORT = re.compile(rf"^(?:(?:{'|'.join(SORT_KEYS)}):(?:asc|desc))?$")


def _columns(result: ScoringResult, alpha: float) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "value": result.continuations,
        "token_count": np.array([len(s) for s in result.token_scores], dtype="<i4"),
        "token": [t for tokens in result.tokens for t in tokens],
        "token_logprob": (np.concatenate(result.token_scores).astype("<f8")
                          if result.token_scores else np.zeros(0, dtype="<f8")),
    }
    for agg in AGGREGATIONS:
        columns[f"score_{agg}"] = result.scores(agg, alpha).astype("<f8")
    return columns


class ScoringHeatmap(LmqlWidget):
    """A `ScoringResult` as a table: one row per value, one cell per token coloured by
    its log-probability (exact number on hover), the totals (sum, mean, normalized), a
    probability bar (softmax across values under `agg`) and the argmax marked.

    `agg` switches the aggregation in place; `sort` ("<column>:asc|desc", e.g.
    "prob:desc") orders the rows, as clicking a column header does.
    """

    view = "heatmap"
    columns = COLUMNS
    _page_traits = ("prompt", "model_identifier", "agg", "alpha", "sort")

    prompt = traitlets.Unicode("").tag(sync=True)
    model_identifier = traitlets.Unicode("").tag(sync=True)
    agg = traitlets.Enum(AGGREGATIONS, default_value="sum").tag(sync=True)
    alpha = traitlets.Float(0.7, read_only=True).tag(sync=True)
    sort = traitlets.Unicode("").tag(sync=True)

    def __init__(self, result: ScoringResult, *, agg: str = "sum", alpha: float = 0.7,
                 sort: str = "", **kwargs: Any):
        if not isinstance(result, ScoringResult):
            raise TypeError(f"ScoringHeatmap needs a ScoringResult, got {type(result).__name__}")
        super().__init__(agg=agg, sort=sort, **kwargs)
        self.set_trait("alpha", float(alpha))
        self.result = result
        self.prompt = result.prompt
        self.model_identifier = result.model_identifier
        self.data = self.pack(_columns(result, self.alpha))

    @traitlets.validate("sort")
    def _check_sort(self, proposal: Any) -> str:
        if not _SORT.match(proposal["value"]):
            raise traitlets.TraitError(
                f"sort must be '' or '<column>:asc' / '<column>:desc' with column one of "
                f"{', '.join(SORT_KEYS)}; got {proposal['value']!r}")
        return proposal["value"]

    def text(self) -> str:
        """The scores table as text (what text-only front ends show)."""
        return repr(self.result)

    def static_html(self) -> str:
        """The heatmap as a styled table: each token coloured by its log-probability (the
        number in its `title`), the totals, P(value) under `agg`, the argmax starred."""
        result, agg = self.result, self.agg
        sums = {key: result.scores(key, self.alpha) for key in AGGREGATIONS}
        probs = result.probs(agg, self.alpha)
        best = int(np.argmax(sums[agg])) if len(result) else -1
        cell = "padding: 3px 8px; border-bottom: 1px solid rgba(128,128,128,0.3); vertical-align: top"
        number = f"{cell}; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums"
        head = "".join(f'<th style="{cell}; text-align: left">{static.escape(title)}</th>'
                       for title in ("value", "tokens", "sum", "mean", "normalized",
                                     f"P(value) by {agg}"))
        rows = []
        for v, value in enumerate(result.continuations):
            tokens = "".join(
                static.coloured(static.text_html(token, markers=True), lp,
                                f"logprob {static.format_number(lp)} · p "
                                f"{static.format_percent(math.exp(lp))}",
                                "padding: 0 3px; margin: 1px; border-radius: 2px; "
                                "display: inline-block; white-space: pre")
                for token, lp in zip(result.tokens[v], result.token_scores[v].tolist()))
            star = "★ " if v == best else ""
            weight = "font-weight: 600; " if v == best else ""
            numbers = "".join(
                f'<td style="{number}{"; font-weight: 600" if key == agg else ""}" '
                f'title="{key} = {sums[key][v]!r}">{static.format_number(float(sums[key][v]))}</td>'
                for key in AGGREGATIONS)
            rows.append(
                f'<tr><td style="{cell}; {weight}{static.CODE}; white-space: pre-wrap; '
                f'overflow-wrap: anywhere">{star}{static.text_html(value, markers=True)}</td>'
                f'<td style="{cell}; {static.CODE}">{tokens}</td>{numbers}'
                f'<td style="{number}" title="softmax of the {agg} scores across the values">'
                f'{static.format_percent(float(probs[v]))}</td></tr>')
        model = (f'<div style="{static.MUTED}">model <code>{static.escape(self.model_identifier)}'
                 f'</code></div>' if self.model_identifier else "")
        prompt = (f'<div style="{static.MUTED}; white-space: pre-wrap">prompt: '
                  f'{static.escape(self.prompt)}</div>')
        return (f'<div class="lmnb-static" style="{static.FONT}">{static.legend_html()}{model}'
                f'{prompt}<table style="border-collapse: collapse; margin-top: 4px">'
                f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')

    def argmax(self) -> str:
        """The value with the highest score under the current aggregation."""
        return self.result.argmax(self.agg, self.alpha)

    def to_pandas(self) -> Any:
        """The scores as a DataFrame (see `ScoringResult.to_pandas`), as this view shows
        them: "normalized" with its alpha, "prob" the softmax under its aggregation."""
        frame = self.result.to_pandas()
        frame["normalized"] = self.result.scores("normalized", self.alpha)
        frame["prob"] = self.result.probs(self.agg, self.alpha)
        return frame

    def __repr__(self) -> str:
        count = len(self.result)
        return (f"ScoringHeatmap({count} value{'' if count == 1 else 's'}, "
                f"agg={self.agg!r}, argmax={self.argmax()!r})")
