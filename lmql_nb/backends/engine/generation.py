"""Batched decoding (argmax and sampling) over a `LanguageModel`.

All rows of all requests in a group are stepped together (one forward pass on
transformers; on llama.cpp one decode call per request, see `llama_model`), and rows
leave the batch as soon as they finish, so short requests return early. A request whose
constraint or `on_token` callback fails fails alone.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from ...constraints.matcher import Constraint, ConstraintError, SequenceMatcher
from ...constraints.spec import ConstraintSpec
from ...constraints.stops import new_stop
from ...core.options import GenerateOptions
from ...core.results import TokenInfo
from ...tokenization.tokenizer import EngineTokenizer, IncrementalDecoder
from .model import LanguageModel, Rows
from .penalties import penalize_
from .sampling import completion, describe, log_softmax, sample, seeded_generator, step_stats
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
    #: response tokens already written (a branch's shared start): the model continues
    #: after them and the constraint and stop strings see them, but they are not returned
    prefix_ids: tuple[int, ...] = ()
    #: tokens every sequence takes first instead of choosing (returned with their numbers;
    #: no random draw is spent on them)
    forced_ids: tuple[int, ...] = ()
    #: the continuation block the call was made in (`lmql_nb.core.continuation`): its
    #: prompt may continue an earlier call's state, and leaves its own for later calls
    continuation: Optional[int] = None

    @property
    def context_ids(self) -> list[int]:
        """What the model runs before the first returned token: prompt, then prefix."""
        return self.prompt_ids + list(self.prefix_ids)

    @property
    def length_reason(self) -> str:
        """The finish reason of a sequence that reached `max_new_tokens`."""
        return "context" if self.limited_by_context else "length"


@dataclasses.dataclass(eq=False)
class _Row:
    request: Request
    index: int
    decoder: IncrementalDecoder
    matcher: Optional[SequenceMatcher] = None
    tokens: list[TokenInfo] = dataclasses.field(default_factory=list)
    text: str = ""
    finish_reason: Optional[str] = None
    end_token: Optional[TokenInfo] = None  # the end-of-sequence token that ended it

    @property
    def job(self) -> GenerateJob:
        job: GenerateJob = self.request.payload
        return job


def _finish_request(request: Request, rows: Sequence[_Row]) -> None:
    job: GenerateJob = request.payload
    request.finish([completion(row.tokens, row.decoder, job.options.constraint,
                               row.finish_reason or "length", job.prompt, job.prefix_ids,
                               row.end_token)
                    for row in rows])


def start_matcher(job: GenerateJob) -> Optional[SequenceMatcher]:
    """A fresh matcher for one of `job`'s sequences, advanced over the job's prefix
    (ValueError if the constraint does not allow the prefix)."""
    if job.constraint is None:
        return None
    matcher = job.constraint.start()
    for position, token_id in enumerate(job.prefix_ids):
        try:
            matcher.advance(token_id)
        except ConstraintError as error:
            raise ValueError(f"the constraint does not allow token {token_id} at position "
                             f"{position} of the response prefix ({error})") from None
    return matcher


def forced_next(job: GenerateJob, generated: int) -> Optional[int]:
    """The token a sequence that has `generated` tokens must take next, if any."""
    return job.forced_ids[generated] if generated < len(job.forced_ids) else None


def run_generate(model: LanguageModel, tokenizer: EngineTokenizer,
                 requests: Sequence[Request]) -> None:
    """Serve a group of argmax/sample requests in shared forward passes."""
    rows_of: dict[Request, list[_Row]] = {}
    for request in list(requests):
        job: GenerateJob = request.payload
        try:
            rows_of[request] = [_Row(request, i, IncrementalDecoder(tokenizer, job.context_ids),
                                     start_matcher(job)) for i in range(job.options.n)]
        except ValueError as error:  # fails this request, not its batch
            request.finish(error=error)
            continue
        for row in rows_of[request]:
            if row.matcher is not None and row.matcher.forced_end and not job.forced_ids:
                row.finish_reason = "stop"  # only the empty text satisfies the constraint
            elif job.max_new_tokens == 0:
                row.finish_reason = job.length_reason
    generators = {r: seeded_generator(r.payload.options.seed) for r in requests
                  if r.payload.options.decoder == "sample"}
    active = [row for rows in rows_of.values() for row in rows if row.finish_reason is None]
    for request, rows in rows_of.items():
        if all(row.finish_reason for row in rows):
            _finish_request(request, rows)
    if not active:
        return

    # identical prompts (one request's n rows, or requests for one prompt) run once
    decoding, logits = model.start([row.job.context_ids for row in active],
                                   all(row.job.options.cache for row in active),
                                   [row.request for row in active],
                                   [row.job.continuation for row in active])
    try:
        while True:
            logprobs = log_softmax(logits)  # the model's own, unconstrained
            _penalize(logits, active)
            next_ids = _choose(_mask(logits, active, tokenizer), active, generators).tolist()
            keep = []
            for i, row in enumerate(active):
                try:
                    row.finish_reason = _advance(row, next_ids[i], logprobs[i], tokenizer)
                except Exception as error:  # fails this request, not its batch
                    row.request.finish(error=error)
                    row.request.cancel()
                    row.finish_reason = "cancelled"
                if row.finish_reason is None:
                    keep.append(i)
            for request in {row.request for row in active}:
                rows = rows_of[request]
                if all(row.finish_reason for row in rows) and not request.future.done():
                    _finish_request(request, rows)
            _remember(decoding, active, keep)
            if not keep:
                return
            decoding.keep(keep)
            active = [active[i] for i in keep]
            logits = decoding.step([next_ids[i] for i in keep])
    finally:
        decoding.close()


def _remember(decoding: Rows, active: Sequence[_Row], keep: Sequence[int]) -> None:
    """Leave the state of each finished one-sequence call made in a continuation block
    for the block's next call (its prompt and the tokens fed after it)."""
    kept = set(keep)
    for i, row in enumerate(active):
        job = row.job
        if (i not in kept and job.continuation is not None and job.options.n == 1
                and job.options.cache and row.finish_reason in ("stop", "length")):
            decoding.remember(i, job.context_ids + [t.token_id for t in row.tokens],
                              job.continuation)


def _penalize(logits: np.ndarray, rows: Sequence[_Row]) -> None:
    """Apply each row's penalties (`penalties.penalize_`) to its logits, in place (the
    log-probabilities are already taken)."""
    for i, row in enumerate(rows):
        options = row.job.options
        if options.penalties:
            penalize_(logits[i], options, row.job.context_ids,
                      [t.token_id for t in row.tokens])


def _mask(logits: np.ndarray, rows: Sequence[_Row], tokenizer: EngineTokenizer) -> np.ndarray:
    """Set each constrained row's forbidden tokens to -inf, in place (no copy of the
    vocabulary-sized rows: the log-probabilities are already taken); below a lower token
    bound, end-of-sequence is forbidden too."""
    for i, row in enumerate(rows):
        if row.matcher is not None:
            row.matcher.mask_(logits[i])
        if below_minimum(row.job.options.constraint, len(row.tokens)):
            logits[i, list(tokenizer.eos_token_ids)] = -np.inf
    return logits


def below_minimum(spec: Optional[ConstraintSpec], generated: int) -> bool:
    """True if a sequence of `generated` tokens may not end there (`spec.min_tokens`
    not reached yet, or `generated` is one of `spec.not_tokens`)."""
    return spec is not None and not spec.may_end(generated)


def check_minimum(spec: Optional[ConstraintSpec], generated: int) -> None:
    """ConstraintError if the grammar ends a sequence at a token count it may not have."""
    if spec is not None and below_minimum(spec, generated):
        bound = (f"at least {spec.min_tokens}" if generated < (spec.min_tokens or 0)
                 else f"other than {generated}")
        raise ConstraintError(
            f"the constraint's shape ends the text after {generated} tokens, but it must have "
            f"{bound} (len(TOKENS(...)) bound); loosen one of them")


def _choose(logits: np.ndarray, rows: Sequence[_Row],
            generators: dict[Request, np.random.Generator]) -> np.ndarray:
    """The next token of every active row, each by its own request's decoder (or the
    token it is forced to take)."""
    chosen: np.ndarray = logits.argmax(-1)
    by_request: dict[Request, list[int]] = {}
    for i, row in enumerate(rows):
        forced = forced_next(row.job, len(row.tokens))
        if forced is not None:
            chosen[i] = forced
        elif row.request in generators:
            by_request.setdefault(row.request, []).append(i)
    for request, indices in by_request.items():
        options = request.payload.options
        index = np.array(indices)
        chosen[index] = sample(logits[index], options.temperature, options.top_k,
                               options.top_p, generators[request])
    return chosen


def _advance(row: _Row, token_id: int, logprobs: np.ndarray,
             tokenizer: EngineTokenizer) -> Optional[str]:
    """Add `token_id` to the row; return why the row finished, or None to go on."""
    if row.request.cancelled.is_set():
        return "cancelled"
    job = row.job
    blocked = row.matcher.blocked if row.matcher is not None else None
    if token_id in tokenizer.eos_token_ids:
        row.end_token = describe(step_stats(logprobs, token_id, job.options.top_logprobs,
                                            blocked), row.decoder, advance=False)
        return "stop"
    info = describe(step_stats(logprobs, token_id, job.options.top_logprobs, blocked),
                    row.decoder)
    row.tokens.append(info)
    row.text += info.text
    if row.request.on_progress is not None:
        row.request.on_progress((row.index, info))
    spec = job.options.constraint
    if spec is not None and not below_minimum(spec, len(row.tokens)) \
            and new_stop(row.text, len(info.text), spec):
        return "stop"
    if row.matcher is not None:
        row.matcher.advance(token_id)
        if row.matcher.forced_end:
            check_minimum(spec, len(row.tokens))
            return "stop"
    if len(row.tokens) >= job.max_new_tokens:
        return job.length_reason
    return None
