"""Choosing the next token from a row of logits, and the statistics the widgets show."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Sequence

import torch

from ..constraints.stops import cut_stop, stop_cut
from ..results import Alternative, Generation, TokenInfo
from ..tokenizer import IncrementalDecoder

if TYPE_CHECKING:
    from ..constraints.spec import ConstraintSpec


def filter_logits(logits: torch.Tensor, temperature: float, top_k: Optional[int],
                  top_p: Optional[float]) -> torch.Tensor:
    """Apply temperature, top-k and nucleus (top-p) filtering to rows of logits."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the first stays)
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample(logits: torch.Tensor, temperature: float, top_k: Optional[int],
           top_p: Optional[float], generator: torch.Generator) -> torch.Tensor:
    """Draw one token per row; temperature 0 means the most likely token."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@dataclasses.dataclass(frozen=True)
class StepStats:
    """The numbers behind one chosen token (texts come later, from the decoder)."""

    token_id: int
    logprob: float
    rank: Optional[int] = None
    entropy: Optional[float] = None
    top: tuple[tuple[int, float, bool], ...] = ()  # (token id, logprob, blocked)


def step_stats(logprobs: torch.Tensor, token_id: int, top_logprobs: int,
               blocked: Optional[torch.Tensor] = None) -> StepStats:
    """Describe the chosen token of one row (`logprobs` is that row's log-softmax).

    Rank, entropy and alternatives are computed only when `top_logprobs` asks for
    details, since they cost a pass over the vocabulary. They describe the model's own
    distribution, also under a constraint; `blocked` (True for the tokens a constraint
    forbade) marks the alternatives the constraint ruled out.
    """
    logprob = float(logprobs[token_id])
    if not top_logprobs:
        return StepStats(token_id, logprob)
    rank = int((logprobs > logprobs[token_id]).sum()) + 1
    finite = torch.isfinite(logprobs)
    entropy = float(-(logprobs[finite].exp() * logprobs[finite]).sum())
    values, ids = torch.topk(logprobs, top_logprobs)
    flags = [False] * len(ids) if blocked is None else blocked[ids.cpu()].tolist()
    return StepStats(token_id, logprob, rank, entropy,
                     tuple(zip(ids.tolist(), values.tolist(), flags)))


def describe(stats: StepStats, decoder: IncrementalDecoder) -> TokenInfo:
    """Turn a step's numbers into a `TokenInfo`, advancing `decoder` by its token."""
    top = tuple(Alternative(i, decoder.peek(i), v, b) for i, v, b in stats.top)
    return TokenInfo(token_id=stats.token_id, text=decoder.add(stats.token_id),
                     logprob=stats.logprob, rank=stats.rank, entropy=stats.entropy, top=top)


def seeded_generator(seed: Optional[int]) -> torch.Generator:
    """A CPU generator for one request: seeded for reproducible runs, else random."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def completion(tokens: Sequence[TokenInfo], decoder: IncrementalDecoder,
               spec: Optional["ConstraintSpec"], finish_reason: str, prompt: str) -> Generation:
    """The `Generation` of a finished sequence.

    Its text is the tokens decoded at once in context (as the tokenizer decodes the
    whole sequence); the tokens' own texts are the streaming view, equal to it except
    where the model produced invalid UTF-8. Both are cut at a stop string.
    """
    text = decoder.text()
    if spec is not None and spec.stops:
        tokens = cut_stop(tokens, spec)
        cut = stop_cut(text, spec)
        text = text if cut is None else text[:cut]
    return Generation(text=text, tokens=tuple(tokens), finish_reason=finish_reason,
                      prompt=prompt)
