"""Scoring continuations: one pass over the shared prompt, one batched pass over values.

The prompt's tokens run once; its key/value cache is repeated for a batch of values,
which run together (right-padded, with an attention mask over prompt + value). The
log-probability of a value token is read from the position before it: the prompt's last
position for the first suffix token, the suffix's own positions after that.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
from typing import Sequence

import torch

from .torch_model import TorchModel
from .worker import Request

# logits of one value batch are at most this many floats (256 MB)
MAX_LOGITS_PER_BATCH = 1 << 26


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


def run_score(model: TorchModel, requests: Sequence[Request]) -> None:
    """Serve score requests one after another (each is one batched computation)."""
    for request in requests:
        try:
            request.finish(score_job(model, request.payload, request))
        except Exception as error:  # one failed request must not fail the others
            request.finish(error=error)


def score_job(model: TorchModel, job: ScoreJob, request: Request | None = None) -> list[list[float]]:
    """Per value, the log-probabilities of its tokens."""
    with torch.inference_mode():
        prefix_cache, first_logprobs = model.prefill(job.prefix, job.use_prefix_cache)
        results: list[list[float]] = [[] for _ in job.suffixes]
        vocab = first_logprobs.shape[-1]
        longest = max(len(s) for s in job.suffixes)
        per_batch = max(1, MAX_LOGITS_PER_BATCH // (vocab * longest))
        order = sorted(range(len(job.suffixes)), key=lambda i: len(job.suffixes[i]))
        for start in range(0, len(order), per_batch):
            if request is not None and request.cancelled.is_set():
                raise concurrent.futures.CancelledError()
            chunk = order[start:start + per_batch]
            scored = _score_batch(model, job, chunk, prefix_cache, first_logprobs)
            for i, values in zip(chunk, scored):
                results[i] = values
        return results


def _score_batch(model: TorchModel, job: ScoreJob, chunk: list[int], prefix_cache,
                 first_logprobs: torch.Tensor) -> list[list[float]]:
    suffixes = [job.suffixes[i] for i in chunk]
    width = max(len(s) for s in suffixes)
    prefix_length = len(job.prefix)
    input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
    mask = torch.zeros((len(chunk), prefix_length + width), dtype=torch.long)
    mask[:, :prefix_length] = 1
    for row, suffix in enumerate(suffixes):
        input_ids[row, :len(suffix)] = torch.tensor(suffix)
        mask[row, prefix_length:prefix_length + len(suffix)] = 1
    positions = torch.arange(prefix_length, prefix_length + width)[None, :].expand(len(chunk), -1)
    cache = copy.deepcopy(prefix_cache)
    cache.batch_repeat_interleave(len(chunk))
    logits, _ = model.forward(input_ids, mask, positions, cache)
    logprobs = logits.log_softmax(-1)
    results = []
    for row, (i, suffix) in enumerate(zip(chunk, suffixes)):
        scores = []
        for position in range(len(suffix) - job.value_lengths[i], len(suffix)):
            row_logprobs = first_logprobs if position == 0 else logprobs[row, position - 1]
            scores.append(float(row_logprobs[suffix[position]]))
        results.append(scores)
    return results
