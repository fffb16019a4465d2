"""What the decode and scoring loops need from a model, whatever runs it.

Two implementations: `TorchModel` (transformers, key/value caches as tensors) and
`LlamaModel` (llama.cpp, sequences in its key/value cache). The loops in `generation`,
`beam` and `scoring` see only this interface, so argmax, sampling, beam search,
constraints and scoring behave the same on both. Logits cross the interface as numpy
arrays on the CPU, so the loops need no torch (llama.cpp models run without it).
"""

from __future__ import annotations

import abc
from typing import Callable, Hashable, Optional, Sequence

import numpy as np


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

    def close(self) -> None:
        """Release what the rows hold in the model (called once decoding ends)."""


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
              groups: Optional[Sequence[Hashable]] = None) -> tuple[Rows, np.ndarray]:
        """Begin decoding one row per prompt; return the rows and the logits (or
        log-probabilities: softmax and argmax ignore a constant shift) of each row's next
        token, (rows, vocab), float32, the caller's to modify. Identical prompts run once.

        `groups[i]` names the call row i serves. Every row's numbers must equal what its
        call gets alone: a model whose numbers depend on how many rows a forward pass
        holds (llama.cpp) decodes each group apart; one whose batching is exact may mix
        them. Rows forked by `keep` stay in their parent's group.
        """

    @abc.abstractmethod
    def suffix_logprobs(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        use_prefix_cache: bool = True,
                        cancelled: Callable[[], bool] = lambda: False) -> list[list[float]]:
        """Per suffix, the log-probability of each of its tokens after `prefix` and the
        suffix tokens before it. The prefix runs once for all suffixes (and is kept for
        later calls with `use_prefix_cache`). Raises CancelledError once `cancelled()`."""
