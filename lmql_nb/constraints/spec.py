"""The validated constraint of one `generate` call, built from its keyword options.

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
from typing import Any, Optional

from .keywords import KEYWORD_NAMES, clauses_of
from .primitives import PRIMITIVES, Pattern

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
    loops mask end-of-sequence, and ignore stop strings, until it is reached).
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
        return self.shaped or bool(self.stops) or bool(self.min_tokens)


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


#: the primitives keywords lower to (see `primitives`)
CLAUSES = PRIMITIVES


def _merge(clauses: list[tuple[str, Any]]) -> ConstraintSpec:
    fields: dict[str, Any] = {"stops_at": (), "stops_before": (), "regexes": (), "excludes": (),
                              "patterns": ()}
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
        elif key == "pattern":
            fields["patterns"] += (value,)
        elif key == "type":
            fields["integer"] = True
        elif key == "json_schema":
            fields["json_schema"] = value
        elif key in ("max_chars", "max_tokens"):
            previous = fields.get(key)
            fields[key] = value if previous is None else min(previous, value)
        elif key == "min_tokens":
            fields[key] = max(fields.get(key) or 0, value)
        else:  # a keyword that lowered to something no spec field holds
            raise ValueError(f"unknown constraint clause {key!r}; the clauses are: "
                             f"{', '.join(CLAUSES)}")
    if fields.get("choices") and (fields["stops_at"] or fields["stops_before"]):
        fields["choices"] = _cut_choices(fields["choices"], fields["stops_at"],
                                         fields["stops_before"])
    least, most = fields.get("min_tokens"), fields.get("max_tokens")
    if least is not None and most is not None and least > most:
        raise ValueError(f"the token bounds leave no length: at least {least} and at most "
                         f"{most} tokens")
    spec = ConstraintSpec(**fields)
    both = set(spec.stops_at) & set(spec.stops_before)
    if both:
        raise ValueError(f"{sorted(both)!r} given both as stops_at and stops_before; "
                         "choose whether the stop string is kept or dropped")
    if spec.json_schema is not None and _regular_parts(spec):
        raise ValueError(f"json_schema cannot be combined with {', '.join(_regular_parts(spec))}"
                         "; the JSON schema alone decides where the completion ends")
    if spec.min_tokens and spec.stops and spec.shaped:
        raise ValueError(
            f"a lower token bound (at least {spec.min_tokens} tokens) cannot be combined with "
            f"stop strings and {', '.join(p for p in _regular_parts(spec) if 'stops' not in p)}"
            " together: the grammar ends the text at a stop where the shape is complete, "
            "the bound would have to skip it. Accepted: the bound with stop strings, or the "
            "bound with the shape")
    return spec


def _cut_choices(choices: tuple[str, ...], stops_at: tuple[str, ...],
                 stops_before: tuple[str, ...]) -> tuple[str, ...]:
    """Each choice cut at its first stop string (`stops.stop_cut`'s rule), as the text
    would be cut once generated."""
    from .stops import stop_cut

    probe = ConstraintSpec(stops_at=stops_at, stops_before=stops_before)
    cut = []
    for choice in choices:
        end = stop_cut(choice, probe)
        cut.append(choice if end is None else choice[:end])
    return tuple(dict.fromkeys(cut))


def _regular_parts(spec: ConstraintSpec) -> list[str]:
    """The names of the constraints in `spec` that a regular expression expresses."""
    return [name for name, present in (
        ("choices", spec.choices is not None), ("regex", bool(spec.regexes)),
        ("type=int", spec.integer), ("stops_at", bool(spec.stops_at)),
        ("stops_before", bool(spec.stops_before)),
        ("len(RESPONSE)", spec.max_chars is not None),
        ("not ... in RESPONSE", bool(spec.excludes))) if present] + [
            p.label for p in spec.patterns]
