"""Choosing the next token from a row of logits, and the statistics the widgets show."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ...constraints.stops import cut_stop, stop_cut, stop_floor, stop_skips
from ...core.results import Alternative, Generation, TokenInfo
from ...tokenization.tokenizer import IncrementalDecoder

if TYPE_CHECKING:
    from ...constraints.spec import ConstraintSpec

# a row's top-k alternatives are looked for first among the tokens this close (in nats)
# to the best one: a few thousand of a 262k vocabulary, so selecting is 20x cheaper
_TOP_WINDOW = 10.0


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis, float32 (the sum runs in float64)."""
    shifted = logits - logits.max(-1, keepdims=True)
    total = np.exp(shifted).sum(-1, keepdims=True, dtype=np.float64)
    result: np.ndarray = shifted - np.log(total).astype(np.float32)
    return result


def filter_logits(logits: np.ndarray, temperature: float, top_k: Optional[int],
                  top_p: Optional[float]) -> np.ndarray:
    """Apply temperature, top-k and nucleus (top-p) filtering to rows of logits (a new
    float64 array; `logits` is left as it is).

    Every temperature > 0 is computed, by the limit where float arithmetic has none: the
    logits are shifted so each row's best is 0 and divided in float64, so a temperature
    too small to divide by leaves the best tokens at 0 and the rest at -inf (the most
    likely token, ties drawn evenly), and an infinite one leaves every allowed token at 0
    (uniform over what the constraint allows).
    """
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    if np.isinf(temperature):
        logits = np.where(np.isneginf(shifted), -np.inf, 0.0)
    else:
        with np.errstate(over="ignore"):
            logits = shifted / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[..., -top_k][..., None]
        logits[logits < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1)
        sorted_logits = np.take_along_axis(logits, order, -1)
        probs = np.exp(log_softmax(sorted_logits).astype(np.float64))
        # drop a token when the tokens before it already reach top_p (the first stays)
        drop_sorted = (np.cumsum(probs, -1) - probs) >= top_p
        drop = np.empty_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        logits[drop] = -np.inf
    return logits


def sample(logits: np.ndarray, temperature: float, top_k: Optional[int],
           top_p: Optional[float], generator: np.random.Generator) -> np.ndarray:
    """Draw one token per row; temperature 0 means the most likely token."""
    if temperature == 0:
        chosen: np.ndarray = logits.argmax(-1)
        return chosen
    probs = np.exp(log_softmax(filter_logits(logits, temperature, top_k, top_p)))
    cumulative = np.cumsum(probs, -1)
    totals = cumulative[:, -1]
    # below the total even when rounding of random() * total would reach it
    draws = np.minimum(generator.random(len(probs)) * totals, np.nextafter(totals, 0))
    # the first token whose cumulative probability exceeds the draw: a token of
    # probability 0 adds nothing, so it is never chosen
    return np.array([np.searchsorted(row, draw, side="right")
                     for row, draw in zip(cumulative, draws)])


def top_ids(logprobs: np.ndarray, k: int) -> np.ndarray:
    """The ids of the `k` largest entries of a row, largest first."""
    k = min(k, len(logprobs))
    near = np.flatnonzero(logprobs >= logprobs.max() - _TOP_WINDOW)
    candidates = near if len(near) >= k else np.arange(len(logprobs))
    best = candidates[np.argpartition(logprobs[candidates], len(candidates) - k)[-k:]]
    return best[np.argsort(-logprobs[best], kind="stable")]


@dataclasses.dataclass(frozen=True)
class StepStats:
    """The numbers behind one chosen token (texts come later, from the decoder).

    Under a constraint, `constrained_logprob` is the token's log-probability among the
    allowed tokens (the model's distribution renormalised over them) and `allowed` the
    best allowed tokens with theirs; `logprob`, `rank`, `entropy` and `top` stay the
    model's own."""

    token_id: int
    logprob: float
    rank: Optional[int] = None
    entropy: Optional[float] = None
    top: tuple[tuple[int, float, bool], ...] = ()  # (token id, logprob, blocked)
    constrained_logprob: Optional[float] = None
    allowed: tuple[tuple[int, float], ...] = ()  # (token id, constrained logprob)


@dataclasses.dataclass(frozen=True)
class RowSummary:
    """What every token chosen from one row shares: the row's entropy and top-k, and
    under a constraint the log of the allowed tokens' total probability and the best
    allowed tokens (with their renormalised log-probabilities)."""

    entropy: float
    top: tuple[tuple[int, float, bool], ...]
    allowed_mass: Optional[float] = None
    allowed: tuple[tuple[int, float], ...] = ()


def allowed_mass(logprobs: np.ndarray, blocked: np.ndarray) -> float:
    """log of the total probability of the tokens `blocked` leaves allowed."""
    allowed = logprobs[~blocked]
    if allowed.size == 0:
        return -np.inf
    best = float(allowed.max())
    return best + float(np.log(np.exp(allowed - best, dtype=np.float64).sum()))


def row_summary(logprobs: np.ndarray, top_logprobs: int,
                blocked: Optional[np.ndarray] = None) -> RowSummary:
    """The entropy and the `top_logprobs` best alternatives of one row (`logprobs` is its
    log-softmax), the same for every token chosen from it. They describe the model's own
    distribution, also under a constraint; `blocked` (True for the tokens a constraint
    forbade) marks the alternatives the constraint ruled out and adds the best allowed
    tokens renormalised among the allowed ones."""
    probs = np.exp(logprobs)
    entropy = float(-np.sum(probs * np.where(probs > 0, logprobs, 0), dtype=np.float64))
    ids = top_ids(logprobs, top_logprobs)
    flags = [False] * len(ids) if blocked is None else blocked[ids].tolist()
    top = tuple(zip(ids.tolist(), logprobs[ids].tolist(), flags))
    if blocked is None:
        return RowSummary(entropy, top)
    mass = allowed_mass(logprobs, blocked)
    masked = np.where(blocked, -np.inf, logprobs)
    best = [i for i in top_ids(masked, top_logprobs).tolist() if masked[i] > -np.inf]
    return RowSummary(entropy, top, mass,
                      tuple((i, float(logprobs[i]) - mass) for i in best))


def step_stats(logprobs: np.ndarray, token_id: int, top_logprobs: int,
               blocked: Optional[np.ndarray] = None,
               summary: Optional[RowSummary] = None) -> StepStats:
    """Describe the chosen token of one row (`logprobs` is that row's log-softmax).

    Rank, entropy and alternatives are computed only when `top_logprobs` asks for
    details, since they cost passes over the vocabulary; pass the row's `summary` when
    several tokens are chosen from one row (beam search) to compute it once. With
    `blocked` (a constraint), the token's log-probability among the allowed tokens too.
    """
    logprob = float(logprobs[token_id])
    if not top_logprobs:
        if blocked is None:
            return StepStats(token_id, logprob)
        mass = summary.allowed_mass if summary is not None else None
        mass = allowed_mass(logprobs, blocked) if mass is None else mass
        return StepStats(token_id, logprob, constrained_logprob=logprob - mass)
    rank = int(np.count_nonzero(logprobs > logprobs[token_id])) + 1
    summary = summary or row_summary(logprobs, top_logprobs, blocked)
    constrained = None if summary.allowed_mass is None else logprob - summary.allowed_mass
    return StepStats(token_id, logprob, rank, summary.entropy, summary.top, constrained,
                     summary.allowed)


def describe(stats: StepStats, decoder: IncrementalDecoder, advance: bool = True) -> TokenInfo:
    """Turn a step's numbers into a `TokenInfo`, advancing `decoder` by its token (or
    not, for the end-of-sequence token that ends a sequence outside its text)."""
    top = tuple(Alternative(i, decoder.peek(i), v, b) for i, v, b in stats.top)
    allowed = tuple(Alternative(i, decoder.peek(i), v) for i, v in stats.allowed)
    text = decoder.add(stats.token_id) if advance else decoder.peek(stats.token_id)
    return TokenInfo(token_id=stats.token_id, text=text,
                     logprob=stats.logprob, rank=stats.rank, entropy=stats.entropy, top=top,
                     constrained_logprob=stats.constrained_logprob, allowed=allowed)


def seeded_generator(seed: Optional[int]) -> np.random.Generator:
    """A generator for one request: seeded for reproducible runs, else random."""
    return np.random.default_rng(seed)


def completion(tokens: Sequence[TokenInfo], decoder: IncrementalDecoder,
               spec: Optional["ConstraintSpec"], finish_reason: str, prompt: str,
               prefix_ids: Sequence[int] = (), end_token: Optional[TokenInfo] = None) -> Generation:
    """The `Generation` of a finished sequence.

    Its text is the tokens decoded at once in context (as the tokenizer decodes the
    whole sequence); the tokens' own texts are the streaming view, equal to it except
    where the model produced invalid UTF-8. Both are cut at a stop string.
    """
    text = decoder.text()
    if spec is not None and spec.stops:
        floor, skips = stop_floor(tokens, spec), stop_skips(tokens, spec)
        tokens = cut_stop(tokens, spec)
        cut = stop_cut(text, spec, floor, skips)
        text = text if cut is None else text[:cut]
    return Generation(text=text, tokens=tuple(tokens), finish_reason=finish_reason,
                      prompt=prompt, prefix_ids=tuple(prefix_ids), end_token=end_token)
