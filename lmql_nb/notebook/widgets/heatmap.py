"""`ScoringHeatmap`: a `ScoringResult` as values x tokens, with totals and probabilities."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import traitlets

from ...scoring import AGGREGATIONS, ScoringResult
from .. import codec
from .base import STATIC, LmqlWidget

SORT_KEYS = ("value", "tokens", "sum", "mean", "normalized", "prob")
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

    _esm = STATIC / "heatmap.js"
    _view = "heatmap"
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
        self.data = codec.pack(_columns(result, self.alpha))

    @traitlets.validate("sort")
    def _check_sort(self, proposal: Any) -> str:
        if not _SORT.match(proposal["value"]):
            raise traitlets.TraitError(
                f"sort must be '' or '<column>:asc' / '<column>:desc' with column one of "
                f"{', '.join(SORT_KEYS)}; got {proposal['value']!r}")
        return proposal["value"]

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
