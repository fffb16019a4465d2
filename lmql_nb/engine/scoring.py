"""Scoring continuations of a prompt with a `LanguageModel`.

The model runs the shared prefix once and the values' tokens in a batch after it (see
`LanguageModel.suffix_logprobs`); concurrent calls share forward passes where the
model allows it (`LanguageModel.score_calls`). This module turns that into per-value
scores.
"""

from __future__ import annotations

import concurrent.futures
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
    """Serve a group of score requests: in shared forward passes where the model batches
    calls (each request finishes as soon as its values are done), else one after another
    (each is one batched computation)."""
    if len(requests) > 1 and model.batches_calls:
        jobs: list[ScoreJob] = [request.payload for request in requests]

        def finished(i: int, scored: list[list[float]]) -> None:
            requests[i].finish(_value_scores(scored, jobs[i].value_lengths))

        try:
            model.score_calls([(job.prefix, job.suffixes) for job in jobs], finished,
                              lambda i: requests[i].cancelled.is_set())
        except Exception as error:  # the requests still open shared the failing pass
            for request in requests:
                request.finish(error=error)
        for request in requests:  # dropped once cancelled
            request.finish(error=concurrent.futures.CancelledError())
        return
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
    return _value_scores(scored, job.value_lengths)


def _value_scores(scored: list[list[float]], value_lengths: list[int]) -> list[list[float]]:
    """Each suffix's scores cut to its value's tokens."""
    return [scores[len(scores) - length:] if length else []
            for scores, length in zip(scored, value_lengths)]
