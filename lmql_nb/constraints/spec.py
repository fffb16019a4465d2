"""The validated constraint of one `generate` call: `ConstraintSpec` (built by `parse`).

The constraint keywords (`stops_at`, `stops_before`, `choices`, `regex`, `type`,
`json_schema`, `starts_with`, `min_tokens`, `where` and any registered since: see
`keywords`) lower to primitives (`primitives.py`), and the primitives merge into one
`ConstraintSpec`; `where` clauses merge with the keywords as if they had been passed as
keywords too (stop strings add up, choices intersect, regexes and patterns must all
match, upper length bounds take the smallest, lower ones the largest). A choice that
contains a stop string is cut there, as its generation would be (LMQL's `X == 'a",'` with
`STOPS_BEFORE(X, '"')` gives "a"). The spec is frozen and hashable: it is part of the
result cache's key.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from .keywords import KEYWORD_NAMES
from .primitives import Pattern

#: the constraint keywords of `generate` (a live view of `keywords`' registry)
CONSTRAINT_KEYS = KEYWORD_NAMES


@dataclasses.dataclass(frozen=True)
class ConstraintSpec:
    """What the completion must satisfy.

    `integer` allows one leading space (" 42": what follows "equals" in most
    tokenizers); `json_schema` is the schema as JSON text, in the caller's key order (the
    output's property order); `max_chars` bounds the completion's length in characters
    (`len(RESPONSE) < n`); `excludes` are strings the completion must not contain
    (`not "s" in RESPONSE`); `patterns` are the other regular constraints (`Pattern`s:
    `STARTS_WITH`, `len(X) > n`, `X != "s"`, and/or/not combinations); `max_tokens` is
    the token bound a `where` clause asked for (already folded into
    `GenerateOptions.max_tokens`); `min_tokens` the least number of tokens (the decode
    loops mask end-of-sequence, and ignore stop strings, until it is reached);
    `not_tokens` the token counts the text may not have (`len(TOKENS(X)) != n`: at
    exactly n tokens the decode loops mask end-of-sequence and ignore stop strings).
    """

    stops_at: tuple[str, ...] = ()
    stops_before: tuple[str, ...] = ()
    choices: Optional[tuple[str, ...]] = None
    regexes: tuple[str, ...] = ()
    integer: bool = False
    json_schema: Optional[str] = None
    max_chars: Optional[int] = None
    max_tokens: Optional[int] = None
    excludes: tuple[str, ...] = ()
    patterns: tuple[Pattern, ...] = ()
    min_tokens: Optional[int] = None
    not_tokens: tuple[int, ...] = ()

    @property
    def stops(self) -> tuple[str, ...]:
        """All stop strings, kept or dropped."""
        return self.stops_at + self.stops_before

    @property
    def shaped(self) -> bool:
        """True if the form of the text is constrained (which needs a token mask)."""
        return (self.choices is not None or bool(self.regexes) or self.integer
                or self.json_schema is not None or self.max_chars is not None
                or bool(self.excludes) or bool(self.patterns))

    @property
    def active(self) -> bool:
        """True if generation has anything to enforce beyond an upper token count."""
        return (self.shaped or bool(self.stops) or bool(self.min_tokens)
                or bool(self.not_tokens))

    def may_end(self, generated: int) -> bool:
        """Whether the text may end after `generated` tokens (the lower bound holds and
        `generated` is no count the text may not have)."""
        return generated >= (self.min_tokens or 0) and generated not in self.not_tokens
