"""`ScoringHeatmap`: a `ScoringResult` as values x tokens, with totals and probabilities."""

from __future__ import annotations

import math
import re
from typing import Any, Sequence, Union

import numpy as np
import traitlets

from ...generations.comparison import ScoreComparison
from ...core.scoring import AGGREGATIONS, ScoringResult
from . import static
from .base import LmqlWidget
from .registry import shows

SORT_KEYS = ("value", "tokens", "sum", "mean", "normalized", "prob")
COLUMNS = {"value": "str", "token_count": "i4", "token": "str", "token_logprob": "f8",
           "token_control": "u1", "group": "i4", **{f"score_{agg}": "f8" for agg in AGGREGATIONS}}
_SORT = re.compile(rf"^(?:(?:{'|'.join(SORT_KEYS)}):(?:asc|desc))?$")

#: the tooltip of a value the models pick different winners for
DISAGREE = "a winner the models disagree on"


def _columns(results: Sequence[ScoringResult], alpha: float) -> dict[str, Any]:
    """The rows of every result in turn; `group` says whose (a model of a comparison)."""
    scores = [s for result in results for s in result.token_scores]
    columns: dict[str, Any] = {
        "value": [v for result in results for v in result.continuations],
        "token_count": np.array([len(s) for s in scores], dtype="<i4"),
        "token": [t for result in results for tokens in result.tokens for t in tokens],
        "token_logprob": (np.concatenate(scores).astype("<f8")
                          if scores else np.zeros(0, dtype="<f8")),
        # a chat template's control token (a reply's end of turn): drawn muted
        "token_control": np.array([c for result in results for mask in result.control_mask()
                                   for c in mask], dtype="u1"),
        "group": np.array([g for g, result in enumerate(results) for _ in result.continuations],
                          dtype="<i4"),
    }
    for agg in AGGREGATIONS:
        columns[f"score_{agg}"] = np.concatenate(
            [result.scores(agg, alpha) for result in results]).astype("<f8")
    return columns


@shows(ScoringResult, ScoreComparison)
class ScoringHeatmap(LmqlWidget):
    """A `ScoringResult` as a table: one row per value, one cell per token coloured by
    its log-probability (exact number on hover), the totals (sum, mean, normalized), a
    probability bar (softmax across values under `agg`) and the argmax marked.

    `agg` switches the aggregation in place; `sort` ("<column>:asc|desc", e.g.
    "prob:desc") orders the rows, as clicking a column header does.

    A `ScoreComparison` (`compare_scores`, `%lmql_score -m A -m B`) shows as one table
    with a group of rows per model: probabilities and the winner (★) are per model, and
    the values the models disagree on are highlighted.
    """

    view = "heatmap"
    columns = COLUMNS
    _page_traits = ("prompt", "model_identifier", "agg", "alpha", "sort", "group_labels")

    prompt = traitlets.Unicode("").tag(sync=True)
    model_identifier = traitlets.Unicode("").tag(sync=True)
    agg = traitlets.Enum(AGGREGATIONS, default_value="sum").tag(sync=True)
    alpha = traitlets.Float(0.7, read_only=True).tag(sync=True)
    sort = traitlets.Unicode("").tag(sync=True)
    #: a comparison's model labels, one per group of rows ([] for one result)
    group_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, result: Union[ScoringResult, ScoreComparison], *, agg: str = "sum",
                 alpha: float = 0.7, sort: str = "", **kwargs: Any):
        if not isinstance(result, (ScoringResult, ScoreComparison)):
            raise TypeError(f"ScoringHeatmap needs a ScoringResult or a ScoreComparison, got "
                            f"{type(result).__name__}")
        super().__init__(agg=agg, sort=sort, **kwargs)
        self.set_trait("alpha", float(alpha))
        self.result = result
        self.prompt = result.prompt
        if isinstance(result, ScoreComparison):
            self.results = list(result.results)
            self.group_labels = list(result.labels)
            self.model_identifier = " vs ".join(result.labels)
        else:
            self.results = [result]
            self.model_identifier = result.model_identifier
        self.data = self.pack(_columns(self.results, self.alpha))

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
        number in its `title`), the totals, P(value) under `agg`, the argmax starred; for
        a comparison a group of rows per model, disagreements marked."""
        agg = self.agg
        cell = ("padding: 3px 8px; border-bottom: 1px solid rgba(128,128,128,0.3); "
                "vertical-align: top; text-align: left")
        number = (f"{cell}; text-align: right; white-space: nowrap; "
                  "font-variant-numeric: tabular-nums")
        head = "".join(f'<th style="{cell}; text-align: left">{static.escape(title)}</th>'
                       for title in ("value", "tokens", "sum", "mean", "normalized",
                                     f"P(value) by {agg}"))
        winners = [r.argmax(agg, self.alpha) if len(r) else None for r in self.results]
        disputed = set(winners) if len(set(winners)) > 1 else set()
        rows = []
        for group, result in enumerate(self.results):
            sums = {key: result.scores(key, self.alpha) for key in AGGREGATIONS}
            probs = result.probs(agg, self.alpha)
            best = int(np.argmax(sums[agg])) if len(result) else -1
            if self.group_labels:
                verdict = " · the models disagree" if disputed else ""
                rows.append(f'<tr><th colspan="6" style="{cell}; text-align: left">model '
                            f'<code>{static.escape(self.group_labels[group])}</code>{verdict}'
                            f'</th></tr>')
            for v, value in enumerate(result.continuations):
                tokens = "".join(
                    static.coloured(static.text_html(token, markers=True), lp,
                                    f"logprob {static.format_number(lp)} · p "
                                    f"{static.format_percent(math.exp(lp))}"
                                    + (" · the chat template's end of turn" if control else ""),
                                    "padding: 0 3px; margin: 1px; border-radius: 2px; "
                                    "display: inline-block; white-space: pre"
                                    + ("; opacity: 0.5; font-style: italic" if control else ""))
                    for token, lp, control in zip(result.tokens[v],
                                                  result.token_scores[v].tolist(),
                                                  result.control_mask()[v]))
                star = "★ " if v == best else ""
                weight = "font-weight: 600; " if v == best else ""
                mark = ("; outline: 2px dashed rgba(216,67,67,0.8); outline-offset: -2px"
                        if value in disputed else "")
                numbers = "".join(
                    f'<td style="{number}{"; font-weight: 600" if key == agg else ""}" '
                    f'title="{key} = {sums[key][v]!r}">'
                    f'{static.format_number(float(sums[key][v]))}</td>'
                    for key in AGGREGATIONS)
                rows.append(
                    f'<tr><td style="{cell}; {weight}{static.CODE}; white-space: pre-wrap; '
                    f'overflow-wrap: anywhere{mark}"'
                    f'{" title=" + chr(34) + DISAGREE + chr(34) if mark else ""}>'
                    f'{star}{static.text_html(value, markers=True)}</td>'
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
        """The value with the highest score under the current aggregation (the first
        model's, for a comparison)."""
        return self.results[0].argmax(self.agg, self.alpha)

    def to_pandas(self) -> Any:
        """The scores as a DataFrame (see `ScoringResult.to_pandas`), as this view shows
        them: "normalized" with its alpha, "prob" the softmax under its aggregation. For
        a comparison, `ScoreComparison.to_pandas` under this aggregation."""
        if isinstance(self.result, ScoreComparison):
            return self.result.to_pandas(self.agg, self.alpha)
        frame = self.result.to_pandas()
        frame["normalized"] = self.result.scores("normalized", self.alpha)
        frame["prob"] = self.result.probs(self.agg, self.alpha)
        return frame

    def __repr__(self) -> str:
        count = len(self.results[0])
        return (f"ScoringHeatmap({count} value{'' if count == 1 else 's'}, "
                f"agg={self.agg!r}, argmax={self.argmax()!r})")
