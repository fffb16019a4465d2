"""Scoring continuations of a prompt with a `LanguageModel`.

The model runs the shared prefix once and the values' tokens in a batch after it (see
`LanguageModel.suffix_logprobs`); concurrent calls share forward passes where the
model allows it (`LanguageModel.score_calls`). This module turns that into per-value
scores.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from ..protocol import ScoredToken
from .model import LanguageModel
from .sampling import top_ids
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
    #: k (0 or more): return `ScoredToken`s with each token's rank and k best alternatives
    #: (such jobs run alone, never in another call's forward pass)
    top_logprobs: Optional[int] = None


def run_score(model: LanguageModel, requests: Sequence[Request]) -> None:
    """Serve a group of score requests: in shared forward passes where the model batches
    calls (each request finishes as soon as its values are done), else one after another
    (each is one batched computation)."""
    if len(requests) > 1 and model.batches_calls and all(
            request.payload.top_logprobs is None for request in requests):
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
              request: Optional[Request] = None) -> list[list[Any]]:
    """Per value, the log-probabilities of its tokens (`ScoredToken`s when
    `job.top_logprobs` is set)."""
    cancelled = request.cancelled.is_set if request is not None else (lambda: False)
    details: dict[tuple[int, int], tuple[int, tuple[tuple[int, float], ...]]] = {}

    def on_row(i: int, j: int, logprobs: np.ndarray) -> None:
        token = job.suffixes[i][j]
        if j >= len(job.suffixes[i]) - job.value_lengths[i]:
            rank = int(np.count_nonzero(logprobs > logprobs[token])) + 1
            top: tuple[tuple[int, float], ...] = ()
            if job.top_logprobs:
                ids = top_ids(logprobs, job.top_logprobs)
                top = tuple(zip(ids.tolist(), logprobs[ids].tolist()))
            details[i, j] = rank, top

    scored: list[list[Any]] = model.suffix_logprobs(
        job.prefix, job.suffixes, job.use_prefix_cache, cancelled,
        None if job.top_logprobs is None else on_row)
    if job.top_logprobs is not None:
        scored = [[ScoredToken(value, *details[i, j]) if (i, j) in details else value
                   for j, value in enumerate(scores)] for i, scores in enumerate(scored)]
    return _value_scores(scored, job.value_lengths)


def _value_scores(scored: list[list[Any]], value_lengths: list[int]) -> list[list[Any]]:
    """Each suffix's scores cut to its value's tokens."""
    return [scores[len(scores) - length:] if length else []
            for scores, length in zip(scored, value_lengths)]
