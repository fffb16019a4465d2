"""A `where` over more than the hole being decoded, folded when the hole is reached.

In a query program, `"B[Y]" where Y == "b" or X == "a"` constrains Y by a condition on
X. As in LMQL, X's value is known by the time Y is decoded (it was filled earlier, or it
is a query argument or a Python value in scope), so `X == "a"` is simply True or False:
`True or C` leaves the hole unconstrained by that clause, `False or C` is `C`,
`True and C` is `C`, `not True` is False. What remains is a clause on the hole alone,
enforced while decoding as any other.

A condition on a variable that is not filled yet (a later hole) is unknown. LMQL
evaluates it to None, which its masks treat as allowed: the hole is held to what could
still hold for some value of the later variable. So an unknown condition counts as true
where it stands (`C or later` leaves the hole free, `C and later` is `C`) and, under
`not`, as false (`not (C or later)` is `not C`). The later hole is held to the clause
when it is decoded, with this hole's value known by then.

A conjunct that folds to False (`"B[Y]" where X == "a"` with X = "z") cannot be
satisfied by any text of the hole: a ValueError names it and the values it read.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Union

from .primitives import Pattern, Primitive
from .where import Clause, lower

#: a variable named by a condition that has no value yet (a later hole)
UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "<not filled yet>"})()

#: what folding a clause gives: True, False, or the clauses left on the hole (all apply)
Folded = Union[bool, list[Clause]]


def fold(clauses: tuple[Clause, ...], hole: str, values: Mapping[str, Any], operands: tuple,
         count_tokens: Callable[[str], int]) -> list[Clause]:
    """`clauses` (all applying to the hole `hole`) with every condition on another
    variable replaced by its truth, given `values` (each other variable's value, or
    `UNKNOWN`), `operands` (the clauses' operand values) and `count_tokens` (a text's
    length in the model's tokens, for `len(TOKENS(X))`). ValueError if a clause is False
    whatever the hole's text."""
    folder = _Folder(hole, values, operands, count_tokens)
    out: list[Clause] = []
    for clause in clauses:
        result = folder.clause(clause, True)
        if result is False:
            read = ", ".join(f"{name} = {values[name]!r}" for name in sorted(clause.subjects)
                             if name != hole and name in values)
            raise ValueError(f"where: {clause.source or clause.kind} is False with {read}: no "
                             f"text of [{hole}] can satisfy it")
        if result is not True:
            out.extend(result)
    return out


class _Folder:
    def __init__(self, hole: str, values: Mapping[str, Any], operands: tuple,
                 count_tokens: Callable[[str], int]):
        self.hole = hole
        self.values = values
        self.operands = operands
        self.count_tokens = count_tokens

    def clause(self, clause: Clause, positive: bool) -> Folded:
        """`clause` folded; `positive`: under an even number of `not`s (where an unknown
        condition counts as true)."""
        if clause.subjects == {self.hole}:
            return [clause]
        if clause.kind == "any_of":
            branches = [self.branch(b, positive) for b in clause.parts]
            if any(b is True for b in branches):
                return True
            left = [b for b in branches if b is not False]
            if len(left) <= 1:
                return left[0] if left else False
            return [Clause(self.hole, "any_of", parts=tuple(tuple(b) for b in left
                                                            if isinstance(b, list)),
                           source=clause.source)]
        if clause.kind == "none_of":
            inner = self.branch(clause.parts[0], not positive)
            if isinstance(inner, bool):
                return not inner
            return [Clause(self.hole, "none_of", parts=(tuple(inner),), source=clause.source)]
        value = self.values[clause.subject]
        if value is UNKNOWN:
            return positive
        return holds(clause, value, self.operands, self.count_tokens)

    def branch(self, branch: tuple[Clause, ...], positive: bool) -> Folded:
        """A conjunction of clauses, folded."""
        left: list[Clause] = []
        for clause in branch:
            result = self.clause(clause, positive)
            if result is False:
                return False
            if result is not True:
                left.extend(result)
        return left or True


def holds(clause: Clause, value: Any, operands: tuple, count_tokens: Callable[[str], int]
          ) -> bool:
    """Whether a filled variable's `value` (its text: a value that is no str, such as an
    `int` hole's, as `str` gives it) satisfies the single-variable `clause`. Stopping
    phrases hold for every text (as in LMQL)."""
    text = value if isinstance(value, str) else str(value)
    return all(_satisfies(p, text, count_tokens, clause) for p in lower(clause, operands))


def _satisfies(primitive: Primitive, text: str, count_tokens: Callable[[str], int],
               clause: Clause) -> bool:
    kind, value = primitive
    if kind in ("stops_at", "stops_before"):
        return True
    if kind == "choices":
        return text in value
    if kind == "regex":
        return re.fullmatch(value, text) is not None
    if kind == "type":  # INT(X): the text is an integer
        return re.fullmatch(r"[ \t\n]*[-+]?[0-9]+[ \t\n]*", text) is not None
    if kind == "max_chars":
        return len(text) <= value
    if kind == "excludes":
        return not any(s in text for s in value)
    if kind == "pattern":
        return _matches(value, text, count_tokens, clause)
    if kind == "max_tokens":
        return count_tokens(text) <= value
    if kind == "min_tokens":
        return count_tokens(text) >= value
    if kind == "not_tokens":
        return count_tokens(text) != value
    raise ValueError(f"where: {clause.source or clause.kind}: a {kind} constraint cannot be "
                     f"checked on the filled variable {clause.subject}; accepted on a filled "
                     "variable: in, ==, !=, len(...), len(TOKENS(...)), \"s\" in X, REGEX, INT, "
                     "STARTS_WITH, STOPS_AT/STOPS_BEFORE")


def _matches(pattern: Pattern, text: str, count_tokens: Callable[[str], int],
             clause: Clause) -> bool:
    if pattern.op == "regex":
        return re.fullmatch(str(pattern.regex), text) is not None
    results = [_satisfies(p, text, count_tokens, clause) for p in pattern.parts]
    if pattern.op == "and":
        return all(results)
    if pattern.op == "or":
        return any(results)
    return not all(results)  # "not"
