"""The penalties on tokens already present (LMQL's "additional decoding parameters"),
applied to the scores a decoder chooses from; the log-probabilities a result reports stay
the model's own.

- `repetition_penalty` (Keskar et al. 2019, as HuggingFace's `generate` applies it): the
  score of every token in the sequence so far, prompt included (HuggingFace's and vLLM's
  rule), is divided by the penalty where positive and multiplied by it where negative.
- `frequency_penalty` and `presence_penalty` (as OpenAI's API and vLLM define them): a
  token's score drops by `frequency_penalty` times its count in the output, and by
  `presence_penalty` once if it occurs there at all. The output is what the call
  generates (forced tokens included); a prompt, and a response prefix the call continues
  after, are not output.

The repetition penalty comes first, then the other two (vLLM's order). Argmax and
sampling penalise the logits (before temperature and top-k/top-p); beam search, as
HuggingFace's, penalises each beam's log-probabilities before adding them to its score.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...core.options import GenerateOptions


def penalize_(scores: np.ndarray, options: GenerateOptions, context_ids: Sequence[int],
              output_ids: Sequence[int]) -> None:
    """Apply `options`' penalties to one row of `scores`, in place: `context_ids` is what
    the model saw before the call's output (prompt, then any response prefix),
    `output_ids` what the call generated so far. A -inf score (a forbidden token) stays
    -inf."""
    penalty = options.repetition_penalty
    if penalty != 1.0:
        seen = np.unique(np.asarray(list(context_ids) + list(output_ids), dtype=np.int64))
        if seen.size:
            values = scores[seen]
            scores[seen] = np.where(values < 0, values * penalty, values / penalty)
    frequency, presence = options.frequency_penalty, options.presence_penalty
    if (frequency or presence) and len(output_ids):
        ids, counts = np.unique(np.asarray(output_ids, dtype=np.int64), return_counts=True)
        scores[ids] -= (frequency * counts + presence).astype(scores.dtype)
