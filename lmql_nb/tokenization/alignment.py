"""Aligning several tokenisations of one text on character spans.

Models with different tokenizers cut a text into different tokens, so their per-token
numbers cannot be set side by side token for token. `align` cuts the text at the
places where every tokenisation has a boundary: each resulting segment is a run of
whole tokens in every model (one token each where the tokenizers agree), and the
segments cover every character of the text exactly once.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Segment:
    """Characters `start:end` of the aligned text; `tokens[m]` are the indices of model
    m's tokens that lie in it (a zero-width token belongs to the segment it precedes)."""

    start: int
    end: int
    tokens: tuple[tuple[int, ...], ...]


def token_spans(texts: Sequence[str], end: int, start: int) -> list[tuple[int, int]]:
    """(start, end) offsets of tokens whose `texts` end at offset `end` of the full text;
    the first token is stretched back to `start` (a token that straddles the prompt
    boundary covers the prompt's tail, which other tokenizers may cut elsewhere)."""
    offset = end - sum(len(t) for t in texts)
    spans = []
    for text in texts:
        spans.append((offset, offset + len(text)))
        offset += len(text)
    if spans:
        spans[0] = (min(start, spans[0][0]), spans[0][1])
    return spans


def align(tokenisations: Sequence[Sequence[str]], end: int) -> list[Segment]:
    """Segments of the text that ends at offset `end` (of prompt + continuation) and is
    tokenised as `tokenisations[m]` by model m (each model's token texts, joining to a
    suffix of it). The segments start where the earliest tokenisation starts."""
    starts = [end - sum(len(t) for t in texts) for texts in tokenisations]
    start = min(starts)
    spans = [token_spans(texts, end, start) for texts in tokenisations]
    # where every model has a boundary (a model's own start inside another's first
    # token is not one: its first token is stretched back to `start`)
    common = set.intersection(*({start, end} | {e for _, e in model} for model in spans))
    cuts = sorted(c for c in common if start <= c <= end)
    bounds = list(zip(cuts, cuts[1:]))
    if not bounds:  # an empty text
        return [Segment(start, end, tuple(tuple(range(len(s))) for s in spans))]
    members: list[list[list[int]]] = [[[] for _ in spans] for _ in bounds]
    lefts = [b[0] for b in bounds]
    for m, model in enumerate(spans):
        for index, (token_start, _) in enumerate(model):
            segment = min(bisect.bisect_right(lefts, token_start) - 1, len(bounds) - 1)
            members[max(segment, 0)][m].append(index)
    return [Segment(a, b, tuple(tuple(ids) for ids in segment_members))
            for (a, b), segment_members in zip(bounds, members)]
