"""Batched decoding (argmax and sampling) over a `TorchModel`.

All rows of all requests in a group share one forward pass per step: prompts are
left-padded, each row keeps its own positions, and rows leave the batch (and the key/value
cache) as soon as they finish, so short requests return early.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch

from ..constraints.matcher import Constraint, ConstraintError, SequenceMatcher
from ..constraints.stops import new_stop
from ..options import GenerateOptions
from ..results import TokenInfo
from ..tokenizer import HFTokenizer, IncrementalDecoder
from .sampling import completion, describe, sample, seeded_generator, step_stats
from .torch_model import TorchModel, left_pad
from .worker import Request


@dataclasses.dataclass(frozen=True)
class GenerateJob:
    """What the worker needs to serve one `generate` call."""

    prompt: str
    prompt_ids: list[int]
    options: GenerateOptions
    max_new_tokens: int
    limited_by_context: bool
    constraint: Optional[Constraint] = None


@dataclasses.dataclass(eq=False)
class _Row:
    request: Request
    index: int
    decoder: IncrementalDecoder
    matcher: Optional[SequenceMatcher] = None
    tokens: list[TokenInfo] = dataclasses.field(default_factory=list)
    text: str = ""
    finish_reason: Optional[str] = None

    @property
    def job(self) -> GenerateJob:
        return self.request.payload


def _length_reason(job: GenerateJob) -> str:
    return "context" if job.limited_by_context else "length"


def _finish_request(request: Request, rows: Sequence[_Row]) -> None:
    job: GenerateJob = request.payload
    request.finish([completion(row.tokens, row.decoder, job.options.constraint,
                               row.finish_reason or "length", job.prompt) for row in rows])


def run_generate(model: TorchModel, tokenizer: HFTokenizer, requests: Sequence[Request]) -> None:
    """Serve a group of argmax/sample requests in shared forward passes."""
    rows_of: dict[Request, list[_Row]] = {}
    for request in requests:
        job: GenerateJob = request.payload
        rows_of[request] = [_Row(request, i, IncrementalDecoder(tokenizer, job.prompt_ids),
                                 job.constraint.start() if job.constraint else None)
                            for i in range(job.options.n)]
        for row in rows_of[request]:
            if row.matcher is not None and row.matcher.forced_end:
                row.finish_reason = "stop"  # only the empty text satisfies the constraint
            elif job.max_new_tokens == 0:
                row.finish_reason = _length_reason(job)
    generators = {r: seeded_generator(r.payload.options.seed) for r in requests
                  if r.payload.options.decoder == "sample"}
    active = [row for rows in rows_of.values() for row in rows if row.finish_reason is None]
    for request, rows in rows_of.items():
        if all(row.finish_reason for row in rows):
            _finish_request(request, rows)
    if not active:
        return

    with torch.inference_mode():
        logits, cache, attention_mask, positions = _prefill(model, tokenizer, active)
        while True:
            logprobs = logits.log_softmax(-1)  # the model's own, unconstrained
            next_ids = _choose(_mask(logits, active), active, generators)
            keep = []
            for i, row in enumerate(active):
                try:
                    row.finish_reason = _advance(row, int(next_ids[i]), logprobs[i], tokenizer)
                except ConstraintError as error:  # fails this request, not its batch
                    row.request.finish(error=error)
                    row.request.cancel()
                    row.finish_reason = "cancelled"
                if row.finish_reason is None:
                    keep.append(i)
            for request in {row.request for row in active}:
                rows = rows_of[request]
                if all(row.finish_reason for row in rows) and not request.future.done():
                    _finish_request(request, rows)
            if not keep:
                return
            if len(keep) < len(active):
                index = torch.tensor(keep)
                cache.batch_select_indices(index)
                attention_mask, positions, next_ids = attention_mask[index], positions[index], next_ids[index]
                active = [active[i] for i in keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], -1)
            positions = positions + 1
            logits, cache = model.forward(next_ids[:, None], attention_mask, positions[:, None], cache)
            logits = logits[:, -1, :]


def _prefill(model: TorchModel, tokenizer: HFTokenizer, rows: Sequence[_Row]):
    """The first step of a batch: (logits of the next token, key/value cache, attention
    mask, positions of the last tokens), one row per sequence.

    When every row continues the same prompt (one request, or requests for one prompt),
    the prompt runs once, reusing and refreshing the prefix cache, and its state is
    repeated for the rows; otherwise the prompts run together, left-padded.
    """
    prompts = {tuple(row.job.prompt_ids) for row in rows}
    if len(prompts) == 1:
        ids = rows[0].job.prompt_ids
        use_cache = all(row.job.options.cache for row in rows)
        cache, logprobs = model.prefill(ids, use_cache)
        if len(rows) > 1:
            cache.batch_repeat_interleave(len(rows))
        # log-probabilities serve as logits (softmax and argmax ignore a constant shift);
        # a copy, since constraints mask the logits in place
        logits = logprobs[None, :].repeat(len(rows), 1)
        attention_mask = torch.ones((len(rows), len(ids)), dtype=torch.long)
        return logits, cache, attention_mask, torch.full((len(rows),), len(ids) - 1)
    pad_id = tokenizer.hf.pad_token_id if tokenizer.hf.pad_token_id is not None else 0
    input_ids, attention_mask, positions = left_pad([row.job.prompt_ids for row in rows], pad_id)
    logits, cache = model.forward(input_ids, attention_mask, positions, last_only=True)
    return logits[:, -1, :], cache, attention_mask, positions[:, -1]


def _mask(logits: torch.Tensor, rows: Sequence[_Row]) -> torch.Tensor:
    """Set each constrained row's forbidden tokens to -inf, in place (no copy of the
    vocabulary-sized rows: the log-probabilities are already taken)."""
    for i, row in enumerate(rows):
        if row.matcher is not None:
            row.matcher.mask_(logits[i])
    return logits


def _choose(logits: torch.Tensor, rows: Sequence[_Row], generators: dict) -> torch.Tensor:
    """The next token of every active row, each by its own request's decoder."""
    chosen = logits.argmax(-1)
    by_request: dict[Request, list[int]] = {}
    for i, row in enumerate(rows):
        if row.request in generators:
            by_request.setdefault(row.request, []).append(i)
    for request, indices in by_request.items():
        options = request.payload.options
        index = torch.tensor(indices)
        chosen[index] = sample(logits[index], options.temperature, options.top_k,
                               options.top_p, generators[request])
    return chosen


def _advance(row: _Row, token_id: int, logprobs: torch.Tensor, tokenizer: HFTokenizer) -> Optional[str]:
    """Add `token_id` to the row; return why the row finished, or None to go on."""
    if row.request.cancelled.is_set():
        return "cancelled"
    if token_id in tokenizer.eos_token_ids:
        return "stop"
    job = row.job
    blocked = row.matcher.blocked if row.matcher is not None else None
    info = describe(step_stats(logprobs, token_id, job.options.top_logprobs, blocked),
                    row.decoder)
    row.tokens.append(info)
    row.text += info.text
    if row.request.on_progress is not None:
        row.request.on_progress((row.index, info))
    if job.options.constraint is not None and new_stop(row.text, len(info.text),
                                                       job.options.constraint):
        return "stop"
    if row.matcher is not None:
        row.matcher.advance(token_id)
        if row.matcher.forced_end:
            return "stop"
    if len(row.tokens) >= job.max_new_tokens:
        return _length_reason(job)
    return None
