"""Building a `ConstraintSpec` from `generate`'s keyword options: the keywords' clauses
merged into one spec and checked (see `spec` for the merge rules).

Apart from `spec` so that the spec's data sits below what checks it: `grammar` and
`stops` work on a `ConstraintSpec`, and this module uses them.
"""

from __future__ import annotations

from typing import Any, Optional

from .grammar import check_spec
from .keywords import clauses_of
from .primitives import PRIMITIVES
from .spec import ConstraintSpec
from .stops import stop_cut


def parse_constraints(options: dict[str, Any]) -> Optional[ConstraintSpec]:
    """Validate the constraint keywords in `options`; None if there are none.

    Raises TypeError/ValueError for a wrong type, empty choices, an invalid regex or
    JSON schema, a malformed `where`, or constraints that cannot be combined.
    """
    clauses = clauses_of(options)
    if not clauses:
        return None
    spec = _merge(clauses)
    check_spec(spec)
    return spec


#: the primitives keywords lower to (see `primitives`)
CLAUSES = PRIMITIVES


def _merge(clauses: list[tuple[str, Any]]) -> ConstraintSpec:
    fields: dict[str, Any] = {"stops_at": (), "stops_before": (), "regexes": (), "excludes": (),
                              "patterns": (), "not_tokens": ()}
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
        elif key == "not_tokens":
            fields[key] = tuple(sorted(set(fields[key]) | {value}))
        else:  # a keyword that lowered to something no spec field holds
            raise ValueError(f"unknown constraint clause {key!r}; the clauses are: "
                             f"{', '.join(CLAUSES)}")
    if fields.get("choices") and (fields["stops_at"] or fields["stops_before"]):
        fields["choices"] = _cut_choices(fields["choices"], fields["stops_at"],
                                         fields["stops_before"])
    least, most = _excluding(fields)
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
    if (spec.min_tokens or spec.not_tokens) and spec.stops and spec.shaped:
        bound = (f"at least {spec.min_tokens} tokens" if spec.min_tokens else
                 f"not {' or '.join(map(str, spec.not_tokens))} tokens")
        raise ValueError(
            f"a token bound ({bound}) cannot be combined with "
            f"stop strings and {', '.join(p for p in _regular_parts(spec) if 'stops' not in p)}"
            " together: the grammar ends the text at a stop where the shape is complete, "
            "the bound would have to skip it. Accepted: the bound with stop strings, or the "
            "bound with the shape")
    return spec


def _excluding(fields: dict[str, Any]) -> tuple[Optional[int], Optional[int]]:
    """Fold the token counts the text may not have (`not_tokens`) into its bounds: a
    lower bound the text may not have moves up, an upper one down (`<= 3 and != 3` is
    `<= 2`); counts outside the bounds are dropped. Returns (least, most)."""
    least, most = fields.get("min_tokens"), fields.get("max_tokens")
    excluded = set(fields["not_tokens"])
    if excluded and least is None and 0 in excluded:
        least = 0
    while least is not None and least in excluded:
        least += 1
    while most is not None and most in excluded and most >= 0:
        most -= 1
    if least:
        fields["min_tokens"] = least
    if most is not None:
        fields["max_tokens"] = most
    fields["not_tokens"] = tuple(n for n in sorted(excluded) if n > (least or 0)
                                 and (most is None or n < most))
    return least, most


def _cut_choices(choices: tuple[str, ...], stops_at: tuple[str, ...],
                 stops_before: tuple[str, ...]) -> tuple[str, ...]:
    """Each choice cut at its first stop string (`stops.stop_cut`'s rule), as the text
    would be cut once generated."""
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
