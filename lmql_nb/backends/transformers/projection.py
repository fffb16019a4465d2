"""The vocabulary projection of many positions, a chunk of positions at a time.

Scoring every token of a long prompt (an echo of prompt log-probabilities) or of a long
value needs the next-token distribution at every position. Projected at once, that is a
(positions x vocabulary) float32 array: gigabytes for a few thousand tokens of Gemma 3's
262,144-token vocabulary, and as much again for its log-softmax, so that one request
could take the memory every other one needs. A `Projection` holds the model's final
hidden states instead (positions x hidden size, small) and hands out the logits of a
chunk of positions at a time: half the logits budget, so that a chunk and the one array
of its size that its log-softmax (or log-sum-exp) makes stay within the budget.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np
import torch

#: sets the logits budget (`max_logits`), in floats
MAX_LOGITS_ENV = "LMQL_NB_MAX_LOGITS"
#: the budget when the variable is not set: 2**26 floats (256 MiB)
DEFAULT_MAX_LOGITS = 1 << 26


def max_logits_from_env() -> int:
    """The logits budget `$LMQL_NB_MAX_LOGITS` sets (a positive number of floats), or
    the default; a ValueError naming the variable for anything else."""
    text = os.environ.get(MAX_LOGITS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_LOGITS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${MAX_LOGITS_ENV} is {text!r}: set it to a positive whole "
                         f"number of floats (the default is {DEFAULT_MAX_LOGITS}), or unset it")
    return value


def chunk_positions(budget: int, vocab_size: int) -> int:
    """Positions per chunk: a chunk's logits and their log-softmax (or the temporary of
    its log-sum-exp) together hold at most `budget` floats; one position at least."""
    return max(1, budget // (2 * vocab_size))


class Projection:
    """Final hidden states at some positions, projected onto the vocabulary a chunk of
    positions at a time (`project`); for a model whose projection cannot be applied
    apart from its forward pass, the logits themselves with `project` the identity."""

    def __init__(self, states: torch.Tensor,
                 project: Callable[[torch.Tensor], torch.Tensor],
                 vocab_size: int, budget: int):
        self.states = states  # (positions, hidden size) or (positions, vocabulary)
        self.project = project
        self.vocab_size = vocab_size
        self.budget = budget

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def take(self, index: torch.Tensor) -> "Projection":
        """The positions `index` names, in its order."""
        return Projection(self.states[index.to(self.states.device)], self.project,
                          self.vocab_size, self.budget)

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first position, float32 logits of the chunk's positions): at most half the
        `budget` in floats per chunk (`chunk_positions`), one position at least."""
        step = chunk_positions(self.budget, self.vocab_size)
        for start in range(0, len(self), step):
            yield start, self.project(self.states[start:start + step])

    def token_logprobs(self, targets: torch.Tensor) -> torch.Tensor:
        """log P(`targets[i]`) at each position i, as a float32 CPU tensor (a logit less
        the log-sum-exp of its position: no log-softmax copy of the chunk)."""
        parts = [torch.zeros(0)]
        for start, logits in self.chunks():
            chosen = targets[start:start + len(logits)].to(logits.device)
            parts.append((logits.gather(-1, chosen[:, None])[:, 0]
                          - logits.logsumexp(-1)).cpu())
        return torch.cat(parts)

    def log_softmax(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first position, the chunk's log-probabilities as a float32 numpy array)."""
        for start, logits in self.chunks():
            yield start, logits.log_softmax(-1).cpu().numpy()
