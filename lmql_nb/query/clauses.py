"""A query hole's `where` clauses as the `where` expression `generate` takes.

Queries' where expressions are parsed by `lmql_nb.constraints.where.WhereParser` (the
one parser of LMQL's constraint language, here over the holes' names, with arguments
that may be Python expressions of the program: `X in backpack`). When a hole is reached,
its clauses become one `where` expression over `RESPONSE` for `generate`, built from the
operands' values (strings, ints), never from code.
"""

from __future__ import annotations

from typing import Any, Optional

from ..constraints.where import Clause


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{what} must be a str or a collection of str, got "
                        f"{type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} must hold only str, got {type(item).__name__} {item!r}")
    return items


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    return value


def where_source(clauses: list[Clause], operands: tuple) -> Optional[str]:
    """The `where` expression over `RESPONSE` that `generate` accepts for these clauses,
    with operand values filled in (as literals: values, never code)."""
    parts: list[str] = []
    for clause in clauses:
        values = [operands[v] if kind == "operand" else v for kind, v in clause.arguments]
        what = f"the argument of {clause.kind} on {clause.subject}"
        if clause.kind in ("stops_at", "stops_before"):
            for stop in _strings(values[0], what):
                parts.append(f"{clause.kind.upper()}(RESPONSE, {stop!r})")
        elif clause.kind == "int":
            parts.append("INT(RESPONSE)")
        elif clause.kind == "regex":
            if not isinstance(values[0], str):
                raise TypeError(f"{what} must be a str (a regular expression)")
            parts.append(f"REGEX(RESPONSE, {values[0]!r})")
        elif clause.kind == "choices":
            choices = list(dict.fromkeys(c for v in values for c in _strings(v, what)))
            parts.append(f"RESPONSE in {choices!r}")
        elif clause.kind == "excludes":
            for text in _strings(values[0], what):
                parts.append(f"not {text!r} in RESPONSE")
        else:
            bound, strict = _int(values[0], what), values[1]
            target = "TOKENS(RESPONSE)" if clause.kind == "max_tokens" else "RESPONSE"
            parts.append(f"len({target}) {'<' if strict else '<='} {bound}")
    return " and ".join(parts) or None
