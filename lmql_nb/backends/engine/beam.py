"""Beam search over a `LanguageModel`.

The semantics follow transformers' own beam search (length_penalty 1.0, no early stop):
each step keeps the `n` best live beams out of the 2n best candidates; a candidate that
ends in end-of-sequence among the n best becomes a finished hypothesis, scored by its
log-probability divided by its length; the search ends when no live beam can beat the
worst of n finished hypotheses, or at the length limit, where live beams finish too.

`beam_sample` (LMQL's) is the same search with sampled expansions: at each step every
live beam draws `n` tokens from its own distribution (with `temperature`, `top_k`,
`top_p`, a `seed`; what the constraint allows), each distinct (beam, token) pair is a
candidate once, and the candidates are ranked by log-probability as beam search ranks
its 2n best.

Penalties (`repetition_penalty`, `frequency_penalty`, `presence_penalty`) apply, as in
HuggingFace's beam search, to each beam's log-probabilities before they add to its score:
the ranking and the scores of hypotheses are the penalised ones, the tokens' reported
log-probabilities the model's own.

Under a constraint each beam has its own matcher (copied when a beam forks): candidates
are drawn from the allowed tokens only, a beam the constraint ends (its text is complete,
or a stop string appeared) finishes like one that chose end-of-sequence (the forced end
counting as an end-of-sequence token of probability 1), and beams that cannot be
completed are dropped: those the constraint cannot continue, and those still incomplete
at the length limit. So fewer than `n` sequences may come back.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from ...constraints.matcher import SequenceMatcher
from ...constraints.spec import ConstraintSpec
from ...constraints.stops import new_stop
from ...errors import ConstraintError
from ...tokenization.tokenizer import EngineTokenizer, IncrementalDecoder
from .generation import GenerateJob, below_minimum, check_minimum, forced_next, start_matcher
from .model import LanguageModel, Rows
from .penalties import penalize_
from .sampling import (StepStats, completion, describe, log_softmax, row_summary, sample,
                       seeded_generator, step_stats, top_ids)
from .worker import Request

LENGTH_PENALTY = 1.0


@dataclasses.dataclass(frozen=True)
class _Hypothesis:
    steps: tuple[StepStats, ...]
    logprob: float
    finish_reason: str
    end: Optional[StepStats] = None  # the end-of-sequence token that ended it

    @property
    def score(self) -> float:
        length = len(self.steps) + (1 if self.finish_reason == "stop" else 0)
        return float(self.logprob / max(length, 1) ** LENGTH_PENALTY)


@dataclasses.dataclass(frozen=True)
class _Beam:
    """A live beam; under a constraint also its matcher and, for stop strings, its text."""

    steps: tuple[StepStats, ...]
    logprob: float
    matcher: Optional[SequenceMatcher] = None
    decoder: Optional[IncrementalDecoder] = None
    text: str = ""

    def extend(self, stats: StepStats, total: float,
               spec: Optional[ConstraintSpec]) -> tuple["_Beam", bool]:
        """The beam with one more token, and whether the constraint ends it there.

        Raises ConstraintError if the constraint cannot continue after the token.
        """
        decoder, text, ended = self.decoder, self.text, False
        if decoder is not None:
            decoder = copy.copy(decoder)  # a fork: its one mutable part is the id list
            decoder.ids = list(decoder.ids)
            piece = decoder.add(stats.token_id)
            text += piece
            ended = (spec is not None and not below_minimum(spec, len(self.steps) + 1)
                     and new_stop(text, len(piece), spec))
        matcher = self.matcher
        if matcher is not None and not ended:
            matcher = matcher.copy()
            matcher.advance(stats.token_id)
            ended = matcher.forced_end
            if ended:
                check_minimum(spec, len(self.steps) + 1)
        return _Beam(self.steps + (stats,), total, matcher, decoder, text), ended

    @property
    def complete(self) -> bool:
        """The text satisfies the constraint (always, without one)."""
        return self.matcher is None or self.matcher.accepting


def run_beam(model: LanguageModel, tokenizer: EngineTokenizer, request: Request) -> None:
    """Serve one beam-search request (its beams share each forward pass)."""
    job: GenerateJob = request.payload
    width = job.options.n
    start = _Beam((), 0.0, start_matcher(job),
                  IncrementalDecoder(tokenizer, job.context_ids)
                  if job.options.constraint and job.options.constraint.stops else None)
    dead_ends: list[ConstraintError] = []
    if start.matcher is not None and start.matcher.forced_end and not job.forced_ids:
        finished = [_Hypothesis((), 0.0, "stop")]  # only the empty text satisfies it
    elif job.max_new_tokens > 0:
        beams, logits = model.start([job.context_ids], job.options.cache)
        try:
            finished = _search(beams, logits, tokenizer, request, width, start, dead_ends)
        finally:
            beams.close()
    else:
        finished = [_Hypothesis((), 0.0, job.length_reason)]
    if not finished and dead_ends:  # the constraint, not the length, ended every beam
        raise ValueError(f"beam search found no sequence that satisfies the constraints: "
                         f"{dead_ends[-1]}")
    if not finished:
        raise ValueError(f"beam search found no sequence that satisfies the constraints "
                         f"within {job.max_new_tokens} tokens; allow more tokens")
    best = sorted(finished, key=lambda h: h.score, reverse=True)[:width]
    generations = []
    for hypothesis in best:
        decoder = IncrementalDecoder(tokenizer, job.context_ids)
        tokens = [describe(s, decoder) for s in hypothesis.steps]
        end = None if hypothesis.end is None else describe(hypothesis.end, decoder, advance=False)
        generations.append(completion(tokens, decoder, job.options.constraint,
                                      hypothesis.finish_reason, job.prompt, job.prefix_ids,
                                      end))
    request.finish(generations)


def _search(beams: Rows, logits: np.ndarray, tokenizer: EngineTokenizer, request: Request,
            width: int, start: _Beam, dead_ends: list[ConstraintError]) -> list[_Hypothesis]:
    """The finished hypotheses; the constraint's errors on dropped beams go to `dead_ends`."""
    job: GenerateJob = request.payload
    spec = job.options.constraint
    finished: list[_Hypothesis] = []
    live: list[_Beam] = [start]
    generator = seeded_generator(job.options.seed) if job.options.decoder == "beam_sample" \
        else None
    for step in range(job.max_new_tokens):
        if request.cancelled.is_set():
            return finished + [_Hypothesis(b.steps, b.logprob, "cancelled") for b in live]
        logprobs = log_softmax(logits)  # the model's own, unconstrained
        totals = np.array([b.logprob for b in live], dtype=np.float32)[:, None] + \
            _penalized(logprobs, live, job)
        forced = forced_next(job, step)
        for i, beam in enumerate(live):
            if beam.matcher is not None and forced is None:  # a forced token is checked later
                beam.matcher.mask_(totals[i])
            if below_minimum(spec, len(beam.steps)):
                totals[i, list(tokenizer.eos_token_ids)] = -np.inf
        flat_totals = totals.reshape(-1)
        vocab = logprobs.shape[-1]
        # a forced step has one beam and one candidate: the forced token
        candidates = (np.array([forced]) if forced is not None
                      else _candidates(totals, width, job, generator))
        last_step = step + 1 == job.max_new_tokens
        next_live, parents, tokens = [], [], []
        summaries: dict[int, Any] = {}
        for rank, (total, flat) in enumerate(zip(flat_totals[candidates].tolist(),
                                                 candidates.tolist())):
            if (last_step and rank >= width) or total == float("-inf"):
                break  # at the length limit only the n best candidates may finish
            parent, token_id = divmod(flat, vocab)
            beam = live[parent]
            blocked = beam.matcher.blocked if beam.matcher is not None else None
            if job.options.top_logprobs and parent not in summaries:  # once per parent
                summaries[parent] = row_summary(logprobs[parent], job.options.top_logprobs,
                                                blocked)
            stats = step_stats(logprobs[parent], token_id, job.options.top_logprobs, blocked,
                               summaries.get(parent))
            if token_id in tokenizer.eos_token_ids:
                if rank < width:
                    finished.append(_Hypothesis(beam.steps, total, "stop", stats))
                continue
            try:
                child, ended = beam.extend(stats, total, spec)
            except ConstraintError as error:
                if forced is not None:
                    raise ValueError(f"the constraint does not allow the forced token "
                                     f"{token_id}") from None
                dead_ends.append(error)
                continue  # a beam that cannot be completed is dropped
            if ended:
                if rank < width:
                    finished.append(_Hypothesis(child.steps, total, "stop"))
                continue
            next_live.append(child)
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
        beams.keep(parents)
        logits = beams.step(tokens)
    return finished + [_Hypothesis(b.steps, b.logprob, job.length_reason) for b in live
                       if b.complete]


def _penalized(logprobs: np.ndarray, live: Sequence[_Beam], job: GenerateJob) -> np.ndarray:
    """The scores each beam adds to its total: its log-probabilities with the job's
    penalties applied (HuggingFace's order; see `penalties`), or the log-probabilities
    themselves without penalties."""
    if not job.options.penalties:
        return logprobs
    scores: np.ndarray = logprobs.copy()
    for i, beam in enumerate(live):
        penalize_(scores[i], job.options, job.context_ids, [s.token_id for s in beam.steps])
    return scores


def _candidates(totals: np.ndarray, width: int, job: GenerateJob,
                generator: Optional[np.random.Generator]) -> np.ndarray:
    """The flat (beam * vocabulary + token) indices a step considers, most likely first:
    beam search's 2n best, or under beam_sample `width` draws from each beam's own
    (masked) distribution, each distinct one once."""
    flat_totals = totals.reshape(-1)
    if generator is None:
        return top_ids(flat_totals, 2 * width)
    options = job.options
    rows = np.flatnonzero(np.isfinite(totals).any(-1))  # beams with an allowed token
    if not len(rows):
        return top_ids(flat_totals, 1)
    drawn = sample(np.repeat(totals[rows], width, axis=0), options.temperature, options.top_k,
                   options.top_p, generator)
    flat = np.unique(np.repeat(rows, width) * totals.shape[-1] + drawn)
    order: np.ndarray = flat[np.argsort(-flat_totals[flat], kind="stable")]
    return order


def _done(finished: Sequence[_Hypothesis], live: Sequence[_Beam], width: int,
          length: int) -> bool:
    """No live beam can still beat the worst of `width` finished hypotheses."""
    if len(finished) < width:
        return False
    best_live = max(b.logprob for b in live) / length ** LENGTH_PENALTY
    return bool(best_live <= min(h.score for h in finished))
