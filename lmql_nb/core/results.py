"""What a generation produces, token by token.

`generate` returns plain text as the seed says; `generate(..., return_details=True)`
returns these objects instead, which the token widget draws.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

from .display_hooks import mimebundle


@dataclasses.dataclass(frozen=True)
class Alternative:
    """One of the top-k candidates the model considered at a step.

    `blocked` is True when a constraint (regex, choices, ...) ruled the token out.
    """

    token_id: int
    text: str
    logprob: float
    blocked: bool = False


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """One generated token: its text (as it reads in context) and its statistics.

    `logprob` is the log-probability under the model's own distribution (before the
    decoder's temperature, filtering or penalties); `rank` is 1 for the most likely
    token; `entropy` is the entropy of the next-token distribution in nats. `text` is ""
    for a token that completes no character yet (part of a multi-byte character); the
    character appears with the token that completes it.

    Under a constraint, `constrained_logprob` is the token's log-probability among the
    tokens the constraint allowed (the model's distribution renormalised over them) and
    `allowed` the best allowed tokens with theirs; the other numbers stay the model's own.
    Without a constraint they are None and ().
    """

    token_id: int
    text: str
    logprob: float
    rank: Optional[int] = None
    entropy: Optional[float] = None
    top: tuple[Alternative, ...] = ()
    constrained_logprob: Optional[float] = None
    allowed: tuple[Alternative, ...] = ()

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    @classmethod
    def from_data(cls, item: dict) -> "TokenInfo":
        """A token from `dataclasses.asdict`'s form (JSON-ready data)."""
        item = dict(item)
        top = tuple(Alternative(**a) for a in item.pop("top", ()))
        allowed = tuple(Alternative(**a) for a in item.pop("allowed", ()))
        return cls(**item, top=top, allowed=allowed)


@dataclasses.dataclass(frozen=True)
class Generation:
    """One generated sequence: the completion text and its tokens.

    `finish_reason` is "stop" (end-of-sequence, a stop string, or a constraint that
    allows nothing more), "length" (max_tokens), "context" (the model's context was
    full) or "cancelled". `text` is the tokens decoded at once; the tokens' own texts are
    the streaming view (equal to it unless the model wrote invalid UTF-8).

    `prefix_ids` are the ids of response tokens that came before this generation's first
    token and are not part of it: empty for `generate`; for `LLM.branch`, the tokens the
    branch shares with the generation it departs from.

    `model` is the id of the model that generated it and `fingerprint` a hash of that
    model's files (weights and tokenizer, as the result cache knows them; "" where
    unknown): `LLM.branch` continues a generation only on a model with the same files.
    Neither takes part in comparisons.
    """

    text: str
    tokens: tuple[TokenInfo, ...]
    finish_reason: str
    prompt: str = ""
    prefix_ids: tuple[int, ...] = ()
    #: the end-of-sequence token that ended the sequence, if one did: outside `text` and
    #: `tokens`, reported by the server as OpenAI-compatible servers report it
    end_token: Optional[TokenInfo] = None
    #: the conversation generated for (`{"role", "content"}` dicts; empty for a text
    #: prompt); `prompt` is then the chat template's rendering of it
    messages: tuple[dict, ...] = ()
    model: str = dataclasses.field(default="", compare=False, repr=False)
    fingerprint: str = dataclasses.field(default="", compare=False, repr=False)

    @property
    def logprob(self) -> float:
        """The sequence's total log-probability."""
        return float(sum(t.logprob for t in self.tokens))

    @property
    def constrained_logprob(self) -> Optional[float]:
        """The total log-probability among the tokens the constraint allowed at each
        step (None when generated without a constraint)."""
        if not self.tokens or any(t.constrained_logprob is None for t in self.tokens):
            return None
        return float(sum(t.constrained_logprob for t in self.tokens))  # type: ignore[misc]

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, the token view; `text/plain` stays the dataclass repr."""
        return mimebundle(self)


# called with (sequence index, token) as tokens are generated
TokenCallback = Callable[[int, TokenInfo], None]


@dataclasses.dataclass(frozen=True)
class ValueScores:
    """The tokens of one scored value and their log-probabilities (what a backend's
    `score` returns per value; `ScoringResult` gathers them)."""

    token_ids: list[int]
    tokens: list[str]
    logprobs: list[float]
