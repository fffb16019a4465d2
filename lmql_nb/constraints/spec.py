"""The validated constraint of one `generate` call, built from its keyword options.

The constraint keywords (`stops_at`, `stops_before`, `choices`, `regex`, `type`,
`json_schema`, `where` and any registered since: see `keywords`) become clauses, and the
clauses one `ConstraintSpec`; `where` clauses merge with the keywords as if they had been
passed as keywords too (stop strings add up, choices intersect, regexes must all match,
length bounds take the smallest). The spec is frozen and hashable: it is part of the
result cache's key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from .keywords import KEYWORD_NAMES, clauses_of

#: the constraint keywords of `generate` (a live view of `keywords`' registry)
CONSTRAINT_KEYS = KEYWORD_NAMES


@dataclasses.dataclass(frozen=True)
class ConstraintSpec:
    """What the completion must satisfy.

    `integer` allows one leading space (" 42": what follows "equals" in most
    tokenizers); `json_schema` is the schema as JSON text, in the caller's key order (the
    output's property order); `max_chars` bounds the completion's length in characters
    (`len(RESPONSE) < n`); `excludes` are strings the completion must not contain
    (`not "s" in RESPONSE`); `max_tokens` is the token bound a `where` clause asked for
    (already folded into `GenerateOptions.max_tokens`).
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

    @property
    def stops(self) -> tuple[str, ...]:
        """All stop strings, kept or dropped."""
        return self.stops_at + self.stops_before

    @property
    def shaped(self) -> bool:
        """True if the form of the text is constrained (which needs a token mask)."""
        return (self.choices is not None or bool(self.regexes) or self.integer
                or self.json_schema is not None or self.max_chars is not None
                or bool(self.excludes))

    @property
    def active(self) -> bool:
        """True if generation has anything to enforce beyond a token count."""
        return self.shaped or bool(self.stops)


def parse_constraints(options: dict[str, Any]) -> Optional[ConstraintSpec]:
    """Validate the constraint keywords in `options`; None if there are none.

    Raises TypeError/ValueError for a wrong type, empty choices, an invalid regex or
    JSON schema, a malformed `where`, or constraints that cannot be combined.
    """
    clauses = clauses_of(options)
    if not clauses:
        return None
    spec = _merge(clauses)
    from .grammar import check_spec

    check_spec(spec)
    return spec


#: the clauses keywords lower to (see `keywords`)
CLAUSES = ("stops_at", "stops_before", "choices", "regex", "type", "json_schema", "max_chars",
           "max_tokens", "excludes")


def _merge(clauses: list[tuple[str, Any]]) -> ConstraintSpec:
    fields: dict[str, Any] = {"stops_at": (), "stops_before": (), "regexes": (), "excludes": ()}
    for key, value in clauses:
        if key in ("stops_at", "stops_before", "excludes"):
            fields[key] = tuple(dict.fromkeys(fields[key] + value))
        elif key == "choices":
            previous = fields.get("choices")
            fields["choices"] = value if previous is None else tuple(
                c for c in previous if c in value)
            if not fields["choices"]:
                raise ValueError("the choices given leave nothing to choose from "
                                 "(their intersection is empty)")
        elif key == "regex":
            fields["regexes"] += (value,)
        elif key == "type":
            fields["integer"] = True
        elif key == "json_schema":
            fields["json_schema"] = value
        elif key in ("max_chars", "max_tokens"):
            previous = fields.get(key)
            fields[key] = value if previous is None else min(previous, value)
        else:  # a keyword that lowered to something no spec field holds
            raise ValueError(f"unknown constraint clause {key!r}; the clauses are: "
                             f"{', '.join(CLAUSES)}")
    spec = ConstraintSpec(**fields)
    both = set(spec.stops_at) & set(spec.stops_before)
    if both:
        raise ValueError(f"{sorted(both)!r} given both as stops_at and stops_before; "
                         "choose whether the stop string is kept or dropped")
    if spec.json_schema is not None and _regular_parts(spec):
        raise ValueError(f"json_schema cannot be combined with {', '.join(_regular_parts(spec))}"
                         "; the JSON schema alone decides where the completion ends")
    return spec


def _regular_parts(spec: ConstraintSpec) -> list[str]:
    """The names of the constraints in `spec` that a regular expression expresses."""
    return [name for name, present in (
        ("choices", spec.choices is not None), ("regex", bool(spec.regexes)),
        ("type=int", spec.integer), ("stops_at", bool(spec.stops_at)),
        ("stops_before", bool(spec.stops_before)),
        ("len(RESPONSE)", spec.max_chars is not None),
        ("not ... in RESPONSE", bool(spec.excludes))) if present]
