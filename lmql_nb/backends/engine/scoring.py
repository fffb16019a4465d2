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
    as the joint tokenisation spells it). With `score_prefix`, the prefix's tokens after
    its first are scored too, as if they began each suffix (`value_lengths` may reach
    into them): whole prompts scored with their shared part computed once.
    """

    prefix: list[int]
    suffixes: list[list[int]]
    value_lengths: list[int]
    use_prefix_cache: bool = True
    #: k (0 or more): return `ScoredToken`s with each token's rank and k best alternatives
    #: (such jobs run alone, never in another call's forward pass)
    top_logprobs: Optional[int] = None
    score_prefix: bool = False
    #: the continuation block the call was made in (see `GenerateJob.continuation`)
    continuation: Optional[int] = None


def run_score(model: LanguageModel, requests: Sequence[Request]) -> None:
    """Serve a group of score requests: in shared forward passes where the model batches
    calls (each request finishes as soon as its values are done), else one after another
    (each is one batched computation). The requests of a group agree on `score_prefix`
    (it is part of their batch key); such requests share passes even alone, since their
    prefixes' scores come from the same pass."""
    jobs: list[ScoreJob] = [request.payload for request in requests]
    prefixes = jobs[0].score_prefix
    if (len(requests) > 1 or prefixes) and model.batches_calls and all(
            job.top_logprobs is None for job in jobs) and (
            model.scores_prefixes or not prefixes):

        def finished(i: int, scored: list[list[float]]) -> None:
            requests[i].finish(_value_scores(scored, jobs[i].value_lengths))

        try:
            model.score_calls([(job.prefix, job.suffixes) for job in jobs], finished,
                              lambda i: requests[i].cancelled.is_set(),
                              score_prefix=jobs[0].score_prefix)
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
    if job.score_prefix:
        return _score_with_prefix(model, job, request)
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
        None if job.top_logprobs is None else on_row, job.continuation)
    if job.top_logprobs is not None:
        scored = [[ScoredToken(value, *details[i, j]) if (i, j) in details else value
                   for j, value in enumerate(scores)] for i, scores in enumerate(scored)]
    return _value_scores(scored, job.value_lengths)


def _score_with_prefix(model: LanguageModel, job: ScoreJob,
                       request: Optional[Request]) -> list[list[Any]]:
    """`score_job` for a job with `score_prefix`, in the passes a server makes without
    `score_calls`: a lone prompt after its first token; prompts sharing a prefix as the
    prefix after its first token, then each prompt's rest after the whole prefix (a
    quantised llama.cpp model's numbers depend on how a prompt is split into passes)."""
    plain = dataclasses.replace(job, score_prefix=False)
    if len(job.suffixes) == 1 or len(job.prefix) == 1:
        whole = [job.prefix[1:] + suffix for suffix in job.suffixes]
        return score_job(model, dataclasses.replace(plain, prefix=job.prefix[:1],
                                                    suffixes=whole), request)
    head = score_job(model, dataclasses.replace(
        plain, prefix=job.prefix[:1], suffixes=[job.prefix[1:]],
        value_lengths=[len(job.prefix) - 1]), request)[0]
    tails = score_job(model, dataclasses.replace(
        plain, value_lengths=[len(suffix) for suffix in job.suffixes]), request)
    return _value_scores([head + tail for tail in tails], job.value_lengths)


def _value_scores(scored: list[list[Any]], value_lengths: list[int]) -> list[list[Any]]:
    """Each suffix's scores cut to its value's tokens."""
    return [scores[len(scores) - length:] if length else []
            for scores, length in zip(scored, value_lengths)]
