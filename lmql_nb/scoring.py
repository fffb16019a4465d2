"""`ScoringResult`: the scores a model assigns to continuations of one prompt."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .display_hooks import mimebundle

AGGREGATIONS = ("sum", "mean", "normalized")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x)
    return shifted - np.log(np.sum(np.exp(shifted)))


class ScoringResult:
    """Per-value token log-probabilities after one prompt, with ways to aggregate them.

    Attributes:
        prompt: the prompt that was scored against.
        continuations: the values, in the order given.
        tokens: per value, the token strings the value was scored as (joint tokenisation
            of prompt + value; a token straddling the boundary belongs to the value).
        token_ids: per value, the ids of those tokens.
        token_scores: per value, a numpy array of the tokens' log-probabilities.
        model_identifier: the id of the model that scored.
    """

    def __init__(self, prompt: str, continuations: Sequence[str],
                 tokens: Sequence[Sequence[str]], token_ids: Sequence[Sequence[int]],
                 token_scores: Sequence[Sequence[float]], model_identifier: str):
        self.prompt = prompt
        self.continuations = list(continuations)
        self.tokens = [list(t) for t in tokens]
        self.token_ids = [list(t) for t in token_ids]
        self.token_scores = [np.asarray(s, dtype=np.float64) for s in token_scores]
        self.model_identifier = model_identifier

    def scores(self, agg: str = "sum", alpha: float = 0.7) -> np.ndarray:
        """One score per value.

        - "sum": the sum of the value's token log-probabilities (its log-probability);
        - "mean": that sum divided by the value's token count;
        - "normalized": that sum divided by token count ** alpha.
        """
        sums = np.array([s.sum() for s in self.token_scores])
        lengths = np.array([max(len(s), 1) for s in self.token_scores], dtype=np.float64)
        if agg == "sum":
            return sums
        if agg == "mean":
            return sums / lengths
        if agg == "normalized":
            return sums / lengths ** alpha
        raise ValueError(f"unknown aggregation {agg!r}; accepted: {', '.join(AGGREGATIONS)}")

    def logprobs(self, agg: str = "sum", alpha: float = 0.7) -> np.ndarray:
        """Log-softmax of the aggregated scores across the values."""
        return _log_softmax(self.scores(agg, alpha))

    def probs(self, agg: str = "sum", alpha: float = 0.7) -> np.ndarray:
        """Softmax of the aggregated scores across the values (they sum to 1)."""
        return np.exp(self.logprobs(agg, alpha))

    def argmax(self, agg: str = "sum", alpha: float = 0.7) -> str:
        """The value with the highest aggregated score."""
        return self.continuations[int(np.argmax(self.scores(agg, alpha)))]

    def to_pandas(self) -> Any:
        """A DataFrame with one row per value: its tokens and every aggregation."""
        import pandas as pd

        return pd.DataFrame({
            "value": self.continuations,
            "tokens": self.tokens,
            "token_scores": [s.tolist() for s in self.token_scores],
            "sum": self.scores("sum"),
            "mean": self.scores("mean"),
            "normalized": self.scores("normalized"),
            "prob": self.probs("sum"),
        })

    def __len__(self) -> int:
        return len(self.continuations)

    def __repr__(self) -> str:
        lines = [f"lmql_nb.ScoringResult(model='{self.model_identifier}')"]
        lines += [f"-{value!r}: {score}"
                  for value, score in zip(self.continuations, self.scores("sum"))]
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, the scoring heatmap; `text/plain` stays the text form above."""
        return mimebundle(self)
