"""The primitives every constraint lowers to: the vocabulary of `ConstraintSpec`.

A keyword (`keywords.py`) or a `where` clause (`where.py`) becomes a list of
`(primitive, value)` pairs; `spec.py` merges them into one `ConstraintSpec`, whose
fields the grammar, the decode loops and the server dialects enforce:

    stops_at, stops_before: (str, ...)     ends at the first stop string (kept / dropped)
    choices: (str, ...)                    is one of these strings
    regex: str                             fully matches the regex
    type: int                              is an integer
    json_schema: str                       is JSON valid against the schema (JSON text)
    max_chars: int                         has at most this many characters
    excludes: (str, ...)                   contains none of these strings
    pattern: Pattern                       matches a `Pattern` (a regex, or and/or/not of
                                           the regular primitives above)
    max_tokens, min_tokens: int            has at most / at least this many tokens
    not_tokens: int                        does not have exactly this many tokens

`REGULAR` primitives constrain the text's form and combine freely under and/or/not (the
grammar intersects, unites and complements them); the others do not.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

#: what a keyword or clause lowers to
Primitive = tuple[str, Any]

STOPS = ("stops_at", "stops_before")
REGULAR = ("choices", "regex", "type", "max_chars", "excludes", "pattern")
PRIMITIVES = STOPS + REGULAR + ("json_schema", "max_tokens", "min_tokens", "not_tokens")


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A regular constraint beyond the dedicated fields: the text fully matches `regex`
    (op "regex"), or all (op "and") / any (op "or") / not all (op "not") of `parts`,
    each a regular primitive. `label` is how the user wrote it (in errors and refusals)."""

    label: str
    regex: Optional[str] = None
    op: str = "regex"
    parts: tuple[Primitive, ...] = ()


def regex_escape(text: str) -> str:
    """`text` as a regex matching it literally, in the syntax llguidance (Rust), Python
    and vLLM's structured outputs share."""
    out = []
    for c in text:
        if c in "\\.+*?()|[]{}^$#&-~":
            out.append("\\" + c)
        elif ord(c) < 32 or c == "\x7f":
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)
