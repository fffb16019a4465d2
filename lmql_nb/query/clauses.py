"""A query's `where` expressions, split per hole and mapped onto `generate`'s constraints.

A `where` expression is parsed (never evaluated) into clauses, each about one hole:

    STOPS_AT(X, s), STOPS_BEFORE(X, s), INT(X), REGEX(X, r), X in values,
    not s in X (or s not in X), len(TOKENS(X)) < n, len(X) < n,

joined with `and`; `or` joins clauses about one hole when they are all `in` (the
union of the values) or all stopping phrases (stop at any of them). Arguments written as
literals are read at compile time; any other argument (`X in backpack`, `X in
set([...])`) is a Python expression of the program, evaluated in the program's scope
when the hole is reached. At generation time a hole's clauses become one `where`
expression over `RESPONSE` for `generate` (`lmql_nb.constraints.where`), built from the
values (strings, ints), never from code.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Callable, Optional

_STOPS = {"STOPS_AT": "stops_at", "STOPS_BEFORE": "stops_before"}
_UPPER = {ast.Lt: 1, ast.LtE: 0}
_MIRRORED = {ast.Gt: ast.Lt, ast.GtE: ast.LtE}
SUPPORTED = ('STOPS_AT(X, "s"), STOPS_BEFORE(X, "s"), INT(X), REGEX(X, r"..."), X in [...], '
             'not "s" in X, len(TOKENS(X)) < n, len(X) < n, joined with "and" ("or" between '
             '"in" clauses or between stopping phrases of one variable)')

#: a literal value, or the index of an operand evaluated at run time
Argument = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class Clause:
    """One constraint on hole `subject`: `kind` is stops_at, stops_before, int, regex,
    choices, excludes, max_tokens or max_chars; `arguments` its values or operand refs."""

    subject: str
    kind: str
    arguments: tuple[Argument, ...]


class ClauseError(ValueError):
    """An unsupported or malformed where clause; `node` is the offending part."""

    def __init__(self, message: str, node: ast.AST):
        super().__init__(message)
        self.node = node


class Analyser:
    """Parses where expressions; collects the non-literal arguments as operands (AST
    expressions the compiled program evaluates and hands to the hole)."""

    def __init__(self, source_of: Callable[[ast.AST], str]):
        self.source_of = source_of
        self.operands: list[ast.expr] = []

    def fail(self, node: ast.AST, why: str) -> ClauseError:
        return ClauseError(f"where: cannot express {self.source_of(node)!r}: {why}. "
                           f"Supported: {SUPPORTED}", node)

    def clauses(self, node: ast.AST) -> list[Clause]:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return [c for value in node.values for c in self.clauses(value)]
        if isinstance(node, ast.BoolOp):
            return self.disjunction(node)
        if isinstance(node, ast.Call):
            return [self.call(node)]
        if isinstance(node, ast.Compare):
            return [self.compare(node)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = node.operand
            if isinstance(inner, ast.Compare) and len(inner.ops) == 1 \
                    and isinstance(inner.ops[0], ast.In):
                return [self.excludes(inner.left, inner.comparators[0], node)]
            raise self.fail(node, "'not' applies only to '\"s\" in X'")
        raise self.fail(node, "not a constraint")

    def disjunction(self, node: ast.BoolOp) -> list[Clause]:
        parts = [c for value in node.values for c in self.clauses(value)]
        subjects = {c.subject for c in parts}
        kinds = {c.kind for c in parts}
        if len(subjects) == 1 and kinds == {"choices"}:
            return [Clause(parts[0].subject, "choices",
                           tuple(a for c in parts for a in c.arguments))]
        if len(subjects) == 1 and kinds <= set(_STOPS.values()):
            return parts  # stopping at any of several phrases is what several stops mean
        raise self.fail(node, "'or' can join only 'in' clauses, or stopping phrases, of "
                              "one variable")

    def argument(self, node: ast.expr) -> Argument:
        try:
            return "literal", ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            self.operands.append(node)
            return "operand", len(self.operands) - 1

    def subject(self, node: ast.AST) -> str:
        if not isinstance(node, ast.Name):
            raise self.fail(node, "a constraint applies to a hole's variable name")
        return node.id

    def call(self, node: ast.Call) -> Clause:
        name = node.func.id.upper() if isinstance(node.func, ast.Name) else None
        if name not in ("STOPS_AT", "STOPS_BEFORE", "INT", "REGEX"):
            raise self.fail(node, "unsupported function")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not supported")
        arity = 1 if name == "INT" else 2
        if len(node.args) != arity:
            raise self.fail(node, f"{name} takes {arity} argument(s)")
        subject = self.subject(node.args[0])
        if name == "INT":
            return Clause(subject, "int", ())
        kind = "regex" if name == "REGEX" else _STOPS[name]
        return Clause(subject, kind, (self.argument(node.args[1]),))

    def compare(self, node: ast.Compare) -> Clause:
        if len(node.ops) != 1:
            raise self.fail(node, "chained comparisons are not supported")
        op, left, right = node.ops[0], node.left, node.comparators[0]
        if isinstance(op, ast.In):
            return Clause(self.subject(left), "choices", (self.argument(right),))
        if isinstance(op, ast.NotIn):
            return self.excludes(left, right, node)
        if type(op) in _MIRRORED and _is_len(right):
            op, left, right = _MIRRORED[type(op)](), right, left
        if not _is_len(left):
            raise self.fail(node, "only len(X) and len(TOKENS(X)) can be compared, with an "
                                  "integer")
        if type(op) not in _UPPER:
            raise self.fail(node, "only upper bounds (<, <=) on lengths are supported")
        inner = left.args[0]  # type: ignore[attr-defined]
        kind = "max_chars"
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) \
                and inner.func.id == "TOKENS" and len(inner.args) == 1:
            kind, inner = "max_tokens", inner.args[0]
        bound = self.argument(right)
        return Clause(self.subject(inner), kind, (bound, ("literal", _UPPER[type(op)])))

    def excludes(self, text: ast.expr, variable: ast.expr, node: ast.AST) -> Clause:
        return Clause(self.subject(variable), "excludes", (self.argument(text),))


def _is_len(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "len" and len(node.args) == 1 and not node.keywords)


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
