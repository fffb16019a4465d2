"""`ScoringResult`: the scores a model assigns to continuations of one prompt;
`ScoringTable`: those of a whole dataset (`score_many`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence, overload

import numpy as np

from .display_hooks import mimebundle
from .validation import check_choice

AGGREGATIONS = ("sum", "mean", "normalized")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x)
    return shifted - np.log(np.sum(np.exp(shifted)))


@dataclasses.dataclass(frozen=True)
class ScoredSequence:
    """A scored value as LMQL's `seqs` hold it: the prompt's tokens (as the prompt alone
    tokenises, after its first token, which nothing predicts), then the value's tokens
    (as `token_ids`), with each one's log-probability."""

    input_ids: np.ndarray
    logprobs: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)


#: computes (token ids, log-probabilities) of the prompt's own tokens after its first
PromptScorer = Callable[[], tuple[list[int], list[float]]]


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
        messages: the conversation scored against, for `score(messages, replies)`
            (empty for a text prompt); `prompt` is then its rendering.
        num_value_tokens: per value, how many tokens it was scored as.
        seqs, full_token_scores: per value, the prompt's tokens then the value's, and all
            their log-probabilities (LMQL's names). The prompt's part is computed on
            first access (scoring the prompt's own tokens costs a pass over the prompt
            that scoring the values does not need), from synchronous code.
    """

    def __init__(self, prompt: str, continuations: Sequence[str],
                 tokens: Sequence[Sequence[str]], token_ids: Sequence[Sequence[int]],
                 token_scores: Sequence[Sequence[float]], model_identifier: str,
                 prompt_scorer: Optional[PromptScorer] = None,
                 messages: Sequence[dict] = ()):
        self.prompt = prompt
        #: the conversation the values reply to (empty for a text prompt; `prompt` is
        #: then the chat template's rendering of it)
        self.messages = tuple(messages)
        self.continuations = list(continuations)
        self.tokens = [list(t) for t in tokens]
        self.token_ids = [list(t) for t in token_ids]
        self.token_scores = [np.asarray(s, dtype=np.float64) for s in token_scores]
        self.model_identifier = model_identifier
        self.num_value_tokens = [len(t) for t in self.token_ids]
        self._prompt_scorer = prompt_scorer
        self._seqs: Optional[list[ScoredSequence]] = None

    @property
    def seqs(self) -> list[ScoredSequence]:
        """Per value, prompt + value as one `ScoredSequence`."""
        if self._seqs is None:
            if self._prompt_scorer is None:
                raise NotImplementedError(f"{self.model_identifier} cannot score the prompt's "
                                          "own tokens; token_scores has the values' scores")
            ids, scores = self._prompt_scorer()
            self._seqs = [ScoredSequence(np.asarray(ids + value_ids, dtype=np.int64),
                                         np.concatenate([np.asarray(scores, np.float64), value]))
                          for value_ids, value in zip(self.token_ids, self.token_scores)]
        return self._seqs

    @property
    def full_token_scores(self) -> list[np.ndarray]:
        """Per value, the log-probabilities of the prompt's tokens after the first, then of
        the value's (the last `num_value_tokens[i]` are `token_scores[i]`)."""
        return [s.logprobs for s in self.seqs]

    def control_mask(self) -> list[list[bool]]:
        """Per value, which of its tokens are a chat template's control tokens: the
        end-of-turn token a reply to a conversation is scored with. Views mute them; they
        are scored like any other token."""
        ends_turn = bool(self.messages) and self.messages[-1].get("role") != "assistant"
        return [[ends_turn and i == len(tokens) - 1 for i in range(len(tokens))]
                for tokens in self.tokens]

    def scores(self, agg: str = "sum", alpha: float = 0.7) -> np.ndarray:
        """One score per value.

        - "sum": the sum of the value's token log-probabilities (its log-probability);
        - "mean": that sum divided by the value's token count;
        - "normalized": that sum divided by token count ** alpha.
        """
        check_choice("agg", agg, AGGREGATIONS)
        sums = np.array([s.sum() for s in self.token_scores])
        lengths = np.array([max(len(s), 1) for s in self.token_scores], dtype=np.float64)
        if agg == "sum":
            return sums
        if agg == "mean":
            return sums / lengths
        return sums / lengths ** alpha  # normalized

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


class ScoringTable(Sequence[ScoringResult]):
    """The scores of a dataset: one `ScoringResult` per prompt (`score_many`'s result).

    It is a sequence of `ScoringResult`s, in the prompts' order; a row that did not
    finish (the call was interrupted) is None, and `complete` is False.

    Attributes:
        prompts: the prompts, in order.
        values: per prompt, the values it was scored against.
        gold: per prompt, its correct value, when given (for `accuracy` and `confusion`).
        model_identifier: the id of the model that scored.
        messages: the conversation scored against, for `score(messages, replies)`
            (empty for a text prompt); `prompt` is then its rendering.
    """

    def __init__(self, prompts: Sequence[str], values: Sequence[Sequence[str]],
                 model_identifier: str, gold: Optional[Sequence[str]] = None,
                 results: Optional[Sequence[Optional[ScoringResult]]] = None):
        self.prompts = list(prompts)
        self.values = [list(v) for v in values]
        self.model_identifier = model_identifier
        self.gold = None if gold is None else list(gold)
        self._results: list[Optional[ScoringResult]] = (
            list(results) if results is not None else [None] * len(self.prompts))

    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, index: int) -> ScoringResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScoringResult]: ...

    def __getitem__(self, index: Any) -> Any:
        return self._results[index]

    def set(self, index: int, result: ScoringResult) -> None:
        """Store row `index` (as `score_many` finishes it)."""
        self._results[index] = result

    @property
    def finished(self) -> int:
        """How many rows are scored."""
        return sum(result is not None for result in self._results)

    @property
    def complete(self) -> bool:
        """True when every row is scored."""
        return self.finished == len(self)

    def columns(self) -> list[str]:
        """Every value any row was scored against, in order of first appearance."""
        return list(dict.fromkeys(v for values in self.values for v in values))

    def predictions(self, agg: str = "sum", alpha: float = 0.7) -> list[Optional[str]]:
        """Per row, the value with the highest score (None for an unfinished row)."""
        return [None if r is None else r.argmax(agg, alpha) for r in self._results]

    def accuracy(self, agg: str = "sum", alpha: float = 0.7) -> float:
        """The share of finished rows whose argmax is the gold value."""
        gold = self._require_gold()
        pairs = [(p, g) for p, g in zip(self.predictions(agg, alpha), gold) if p is not None]
        if not pairs:
            raise ValueError("no row is scored yet, so there is no accuracy")
        return sum(p == g for p, g in pairs) / len(pairs)

    def confusion(self, agg: str = "sum", alpha: float = 0.7) -> Any:
        """A DataFrame counting finished rows by gold value (rows) and argmax (columns)."""
        import pandas as pd

        gold = self._require_gold()
        labels = self.columns()
        counts = pd.DataFrame(0, index=pd.Index(labels, name="gold"),
                              columns=pd.Index(labels, name="predicted"))
        for predicted, correct in zip(self.predictions(agg, alpha), gold):
            if predicted is not None:
                counts.loc[correct, predicted] += 1
        return counts

    def _require_gold(self) -> list[str]:
        if self.gold is None:
            raise ValueError("no gold labels: pass gold=[...] to score_many (one value per "
                             "prompt)")
        return self.gold

    def to_pandas(self, agg: str = "sum", alpha: float = 0.7, probs: bool = True) -> Any:
        """A DataFrame with one row per prompt: the prompt, a column per value (its
        probability among the row's values, or with `probs=False` its aggregated score;
        NaN where the row has no such value or is unfinished), the argmax, and with gold
        labels the gold value and whether the argmax equals it."""
        import pandas as pd

        columns = self.columns()
        grid = np.full((len(self), len(columns)), np.nan)
        position = {value: j for j, value in enumerate(columns)}
        for i, result in enumerate(self._results):
            if result is not None:
                numbers = result.probs(agg, alpha) if probs else result.scores(agg, alpha)
                for value, number in zip(result.continuations, numbers):
                    grid[i, position[value]] = number
        frame = pd.DataFrame(grid, columns=columns)
        frame.insert(0, "prompt", self.prompts)
        frame["argmax"] = self.predictions(agg, alpha)
        if self.gold is not None:
            frame["gold"] = self.gold
            frame["correct"] = [None if p is None else p == g
                                for p, g in zip(frame["argmax"], self.gold)]
        return frame

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.finished} finished"
        head = (f"lmql_nb.ScoringTable(model='{self.model_identifier}', {len(self)} rows x "
                f"{len(self.columns())} values, {state})")
        return head if self.gold is None or not self.finished else \
            f"{head}\naccuracy: {self.accuracy():.3f}"

    __str__ = __repr__

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, the dataset view; `text/plain` stays the text form above."""
        return mimebundle(self)
