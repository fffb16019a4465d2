"""Cutting a finished completion at its stop string (`stops_before` drops it).

Under a lower token bound (`ConstraintSpec.min_tokens`) a stop string counts only once
the bound holds: where it ends in that token or a later one (LMQL: "the stopping
condition is only enforced once the other constraints are satisfied"). Likewise a token
count the text may not have (`ConstraintSpec.not_tokens`, `len(TOKENS(X)) != n`): a stop
string that ends in the nth token does not end the text there.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Sequence

from ..core.results import TokenInfo

if TYPE_CHECKING:  # spec cuts its choices with `stop_cut`
    from .spec import ConstraintSpec


def new_stop(text: str, added: int, spec: "ConstraintSpec") -> bool:
    """True if a stop string ends within the last `added` characters of `text`.

    Called after each token with the length of its text, it finds the first stop
    string wherever it lands: inside one token or spread over several.
    """
    if not added or not spec.stops:
        return False
    window = text[-(added + max(map(len, spec.stops)) - 1):]
    return any(stop in window for stop in spec.stops)


def stop_cut(text: str, spec: "ConstraintSpec", floor: int = 0,
             skips: Sequence[tuple[int, int]] = ()) -> Optional[int]:
    """Where `text` should end: None if no stop string ends in it after `floor`
    characters (see `stop_floor`) and outside the `skips` (see `stop_skips`).

    The first stop string to end in `text` decides (the longest, if several end at the
    same place); a `stops_at` string is kept, a `stops_before` string is dropped.
    """
    found: Optional[tuple[int, int, str]] = None  # (end, -length, stop)
    for stop in spec.stops:
        start = text.find(stop, max(0, floor - len(stop) + 1))
        while start >= 0 and any(lo < start + len(stop) <= hi for lo, hi in skips):
            start = text.find(stop, start + 1)
        if start >= 0:
            candidate = (start + len(stop), -len(stop), stop)
            found = candidate if found is None else min(found, candidate)
    if found is None:
        return None
    end, _, stop = found
    return end if stop in spec.stops_at else end - len(stop)


def stop_floor(tokens: Sequence[TokenInfo], spec: "ConstraintSpec") -> int:
    """How many characters of `tokens` no stop string may end in: those before the token
    that reaches `spec.min_tokens` (0 without a lower bound)."""
    if not spec.min_tokens:
        return 0
    return sum(len(t.text) for t in tokens[:spec.min_tokens - 1])


def stop_skips(tokens: Sequence[TokenInfo], spec: "ConstraintSpec") -> list[tuple[int, int]]:
    """The character spans (after `lo`, up to `hi`) of the tokens whose count the text may
    not have (`spec.not_tokens`): a stop string ending there does not count."""
    spans = []
    for n in spec.not_tokens:
        if 0 < n <= len(tokens):
            lo = sum(len(t.text) for t in tokens[:n - 1])
            spans.append((lo, lo + len(tokens[n - 1].text)))
    return spans


def undecided_tail(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of `text` could still grow into a stop string (a
    stream holds them back until the next token decides)."""
    longest = max(map(len, stops), default=0)
    for length in range(min(longest - 1, len(text)), 0, -1):
        if any(stop.startswith(text[-length:]) for stop in stops):
            return length
    return 0


def decided_tokens(tokens: Sequence[TokenInfo], spec: "ConstraintSpec") -> list[TokenInfo]:
    """The tokens a stream may show: those wholly before the cut (`stop_cut`) or, while
    no stop string is complete, before a tail that could still become one. Shown tokens
    never change later; the rest come with the final result."""
    text = "".join(t.text for t in tokens)
    cut = stop_cut(text, spec, stop_floor(tokens, spec), stop_skips(tokens, spec))
    if cut is None:
        cut = len(text) - undecided_tail(text, spec.stops)
    shown: list[TokenInfo] = []
    length = 0
    for token in tokens:
        length += len(token.text)
        if length > cut:
            break
        shown.append(token)
    return shown


def cut_stop(tokens: Sequence[TokenInfo], spec: "ConstraintSpec") -> tuple[TokenInfo, ...]:
    """`tokens` with the text after the cut removed (see `stop_cut`).

    Tokens wholly after the cut are dropped; a token straddling it keeps its text up to
    the cut. So the tokens' texts still join to the completion.
    """
    cut = stop_cut("".join(t.text for t in tokens), spec, stop_floor(tokens, spec),
                   stop_skips(tokens, spec))
    if cut is None:
        return tuple(tokens)
    kept: list[TokenInfo] = []
    length = 0
    for token in tokens:
        if length >= cut:
            break
        room = cut - length
        kept.append(token if len(token.text) <= room
                    else dataclasses.replace(token, text=token.text[:room]))
        length += len(kept[-1].text)
    return tuple(kept)
