"""What the decode and scoring loops need from a model, whatever runs it.

Two implementations: `TorchModel` (transformers, key/value caches as tensors) and
`LlamaModel` (llama.cpp, sequences in its key/value cache). The loops in `generation`,
`beam` and `scoring` see only this interface, so argmax, sampling, beam search,
constraints and scoring behave the same on both. Logits cross the interface as numpy
arrays on the CPU, so the loops need no torch (llama.cpp models run without it).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Callable, Hashable, Optional, Sequence

import numpy as np


#: (suffix index, token position in the suffix, log-probabilities over the vocabulary)
RowCallback = Callable[[int, int, np.ndarray], None]


class Rows(abc.ABC):
    """Sequences being decoded together: one row each, one forward pass per step."""

    @abc.abstractmethod
    def step(self, token_ids: Sequence[int]) -> np.ndarray:
        """Append one token to every row; return the next-token logits, (rows, vocab),
        float32, the caller's to modify."""

    @abc.abstractmethod
    def keep(self, rows: Sequence[int]) -> None:
        """Keep these rows, in this order. A row may be named twice (a beam forks) or not
        at all (it finished)."""

    def close(self) -> None:  # noqa: B027 (optional: rows that hold nothing need none)
        """Release what the rows hold in the model (called once decoding ends)."""

    def remember(self, row: int, ids: Sequence[int],  # noqa: B027 (optional, see below)
                 continuation: int) -> None:
        """Row `row` is done: keep its state for the later calls of the `continuation`
        block (`lmql_nb.core.continuation`). `ids` are its prompt and tokens; the state
        holds as many of them as were fed to the model (the last chosen token was not).
        Optional: a model whose prefix cache continues any prefix needs nothing here."""


class LanguageModel(abc.ABC):
    """A causal language model the engine drives by token ids."""

    #: how many tokens one sequence may hold (prompt and completion)
    context_length: Optional[int]
    #: how many logits a step returns per row
    vocab_size: int
    #: how many rows may be decoded at once (None: no limit but memory)
    max_rows: Optional[int] = None

    @abc.abstractmethod
    def start(self, prompts: Sequence[Sequence[int]], use_prefix_cache: bool = True,
              groups: Optional[Sequence[Hashable]] = None,
              continuations: Optional[Sequence[Optional[int]]] = None
              ) -> tuple[Rows, np.ndarray]:
        """Begin decoding one row per prompt; return the rows and the logits (or
        log-probabilities: softmax and argmax ignore a constant shift) of each row's next
        token, (rows, vocab), float32, the caller's to modify. Identical prompts run once.

        `groups[i]` names the call row i serves. Every row's numbers must equal what its
        call gets alone: a model whose numbers depend on how many rows a forward pass
        holds (llama.cpp) decodes each group apart; one whose batching is exact may mix
        them. Rows forked by `keep` stay in their parent's group.

        `continuations[i]` names the continuation block row i's call was made in (None:
        none): its prompt may continue a state an earlier call of that block left.
        """

    @abc.abstractmethod
    def suffix_logprobs(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        use_prefix_cache: bool = True,
                        cancelled: Callable[[], bool] = lambda: False,
                        on_row: Optional[RowCallback] = None,
                        continuation: Optional[int] = None) -> list[list[float]]:
        """Per suffix, the log-probability of each of its tokens after `prefix` and the
        suffix tokens before it. The prefix runs once for all suffixes (and is kept for
        later calls with `use_prefix_cache`). Raises CancelledError once `cancelled()`.

        `on_row(i, j, logprobs)`, if given, sees the whole next-token distribution (a
        log-softmax over the vocabulary) that suffix i's token j was scored from.
        `continuation`: as in `start`, for the prefix."""

    #: True when several `score` calls may share forward passes (`score_calls`): the
    #: model's numbers then move at most by float rounding, or the user asked for it
    batches_calls: bool = False
    #: True when `score_rows` scores the prefixes' own tokens in their pass (`score_calls`
    #: with `score_prefix`); otherwise such calls run alone (`scoring.score_job`)
    scores_prefixes: bool = False

    def score_calls(self, calls: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                    finished: Callable[[int, list[list[float]]], None],
                    cancelled: Callable[[int], bool], score_prefix: bool = False) -> None:
        """`suffix_logprobs` for several calls, each a (prefix, suffixes) pair, in shared
        forward passes: `finished(i, scores)` as soon as call i is done; a call is
        dropped once `cancelled(i)`. With `score_prefix`, each suffix's scores begin
        with those of its prefix's tokens after the first (a prompt scored whole, as
        an echo of prompt log-probabilities needs, its shared part computed once).

        The (prefix, suffix) rows of all calls, calls with fewer values first, then
        shorter prompts first (so that padding stays small), are cut into chunks the
        model can hold at once (`rows_fit`), and each chunk is one `score_rows`; so
        small calls leave early and memory stays bounded at any number of calls or
        values.
        """
        if score_prefix and not self.scores_prefixes:
            raise ValueError(f"{type(self).__name__} does not score prefixes in its passes")
        options = {"score_prefix": True} if score_prefix else {}
        rows = sorted((ScoreRow(i, j, tuple(prefix), list(suffix))
                       for i, (prefix, suffixes) in enumerate(calls)
                       for j, suffix in enumerate(suffixes)),
                      key=lambda row: (len(calls[row.call][1]), len(row.prefix), row.call))
        results: list[list[list[float]]] = [[[] for _ in suffixes] for _, suffixes in calls]
        left = [len(suffixes) for _, suffixes in calls]
        start = 0
        while start < len(rows):
            chunk: list[ScoreRow] = []
            while start < len(rows) and (not chunk or
                                         self.rows_fit(chunk + [rows[start]], **options)):
                if not cancelled(rows[start].call):
                    chunk.append(rows[start])
                start += 1
            if not chunk:
                continue
            for row, scores in zip(chunk, self.score_rows(chunk, **options)):
                results[row.call][row.value] = scores
                left[row.call] -= 1
                if not left[row.call]:
                    finished(row.call, results[row.call])

    def rows_fit(self, rows: Sequence["ScoreRow"], score_prefix: bool = False) -> bool:
        """Whether these rows can run as one `score_rows` (models with `batches_calls`)."""
        raise NotImplementedError

    def score_rows(self, rows: Sequence["ScoreRow"],
                   score_prefix: bool = False) -> list[list[float]]:
        """Per row, the log-probabilities of its suffix's tokens after its prefix (models
        with `batches_calls`); with `score_prefix` (models with `scores_prefixes`),
        preceded by those of the prefix's tokens after its first."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class ScoreRow:
    """One scored value of one call: its prefix and the suffix tokens after it."""

    call: int
    value: int
    prefix: tuple[int, ...]
    suffix: list[int]
