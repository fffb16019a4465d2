"""Scoring continuations of a prompt with a `LanguageModel`.

The model runs the shared prefix once and the values' tokens in a batch after it (see
`LanguageModel.suffix_logprobs`); this module turns that into per-value scores.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from .model import LanguageModel
from .worker import Request


@dataclasses.dataclass(frozen=True)
class ScoreJob:
    """One `score` call, tokenised.

    `prefix` is shared by every value; `suffixes[i]` follows it for value i, and its last
    `value_lengths[i]` tokens are the value's (any before them are the tail of the prompt
    as the joint tokenisation spells it).
    """

    prefix: list[int]
    suffixes: list[list[int]]
    value_lengths: list[int]
    use_prefix_cache: bool = True


def run_score(model: LanguageModel, requests: Sequence[Request]) -> None:
    """Serve score requests one after another (each is one batched computation)."""
    for request in requests:
        try:
            request.finish(score_job(model, request.payload, request))
        except Exception as error:  # one failed request must not fail the others
            request.finish(error=error)


def score_job(model: LanguageModel, job: ScoreJob,
              request: Optional[Request] = None) -> list[list[float]]:
    """Per value, the log-probabilities of its tokens."""
    cancelled = request.cancelled.is_set if request is not None else (lambda: False)
    scored = model.suffix_logprobs(job.prefix, job.suffixes, job.use_prefix_cache, cancelled)
    return [scores[len(scores) - length:] if length else []
            for scores, length in zip(scored, job.value_lengths)]
