"""Beam search over a `TorchModel`.

The semantics follow transformers' own beam search (length_penalty 1.0, no early stop):
each step keeps the `n` best live beams out of the 2n best candidates; a candidate that
ends in end-of-sequence among the n best becomes a finished hypothesis, scored by its
log-probability divided by its length; the search ends when no live beam can beat the
worst of n finished hypotheses, or at the length limit, where live beams finish too.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from ..results import Generation
from ..tokenizer import HFTokenizer, IncrementalDecoder
from .generation import GenerateJob
from .sampling import StepStats, describe, joined_text, step_stats
from .torch_model import TorchModel, left_pad
from .worker import Request

LENGTH_PENALTY = 1.0


@dataclasses.dataclass(frozen=True)
class _Hypothesis:
    steps: tuple[StepStats, ...]
    logprob: float
    finish_reason: str

    @property
    def score(self) -> float:
        length = len(self.steps) + (1 if self.finish_reason == "stop" else 0)
        return self.logprob / max(length, 1) ** LENGTH_PENALTY


def run_beam(model: TorchModel, tokenizer: HFTokenizer, request: Request) -> None:
    """Serve one beam-search request (its beams share each forward pass)."""
    job: GenerateJob = request.payload
    width = job.options.n
    length_reason = "context" if job.limited_by_context else "length"
    if job.max_new_tokens > 0:
        finished = _search(model, tokenizer, request, width, length_reason)
    else:
        finished = [_Hypothesis((), 0.0, length_reason)]
    best = sorted(finished, key=lambda h: h.score, reverse=True)[:width]
    generations = []
    for hypothesis in best:
        decoder = IncrementalDecoder(tokenizer, job.prompt_ids)
        tokens = tuple(describe(s, decoder) for s in hypothesis.steps)
        generations.append(Generation(joined_text(tokens), tokens,
                                      hypothesis.finish_reason, prompt=job.prompt))
    request.finish(generations)


def _search(model: TorchModel, tokenizer: HFTokenizer, request: Request, width: int,
            length_reason: str) -> list[_Hypothesis]:
    job: GenerateJob = request.payload
    finished: list[_Hypothesis] = []
    live: list[tuple[tuple[StepStats, ...], float]] = [((), 0.0)]  # (steps, logprob)
    pad_id = tokenizer.hf.pad_token_id if tokenizer.hf.pad_token_id is not None else 0
    input_ids, attention_mask, positions = left_pad([job.prompt_ids], pad_id)
    with torch.inference_mode():
        logits, cache = model.forward(input_ids, attention_mask, positions, last_only=True)
        logits = logits[:, -1, :]
        position = int(positions[0, -1])
        for step in range(job.max_new_tokens):
            if request.cancelled.is_set():
                return finished + [_Hypothesis(s, lp, "cancelled") for s, lp in live]
            logprobs = logits.log_softmax(-1)
            totals = torch.tensor([lp for _, lp in live])[:, None] + logprobs
            candidates = torch.topk(totals.flatten(), min(2 * width, totals.numel()))
            vocab = logprobs.shape[-1]
            last_step = step + 1 == job.max_new_tokens
            next_live, parents, tokens = [], [], []
            for rank, (total, flat) in enumerate(zip(candidates.values.tolist(),
                                                     candidates.indices.tolist())):
                if last_step and rank >= width:
                    break  # at the length limit only the n best candidates may finish
                parent, token_id = divmod(flat, vocab)
                steps = live[parent][0]
                if token_id in tokenizer.eos_token_ids:
                    if rank < width:
                        finished.append(_Hypothesis(steps, total, "stop"))
                    continue
                stats = step_stats(logprobs[parent], token_id, job.options.top_logprobs)
                next_live.append((steps + (stats,), total))
                parents.append(parent)
                tokens.append(token_id)
                if len(next_live) == width:
                    break
            finished = sorted(finished, key=lambda h: h.score, reverse=True)[:width]
            live = next_live
            if last_step:
                break
            if not live or _done(finished, live, width, step + 1):
                return finished
            index = torch.tensor(parents)
            cache.reorder_cache(index)
            attention_mask = attention_mask[index]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(live), 1))], -1)
            position += 1
            position_ids = torch.full((len(live), 1), position, dtype=torch.long)
            logits, cache = model.forward(torch.tensor(tokens)[:, None], attention_mask,
                                          position_ids, cache)
            logits = logits[:, -1, :]
    return finished + [_Hypothesis(s, lp, length_reason) for s, lp in live]


def _done(finished: Sequence[_Hypothesis], live: Sequence, width: int, length: int) -> bool:
    """No live beam can still beat the worst of `width` finished hypotheses."""
    if len(finished) < width:
        return False
    best_live = max(lp for _, lp in live) / length ** LENGTH_PENALTY
    return best_live <= min(h.score for h in finished)
