"""LMQL's `where` expressions, parsed (never evaluated) into constraints.

One parser serves `generate(where=...)` (over the variable `RESPONSE`) and query
programs (over their holes' names). A `where` expression is a conjunction (`and`) of
clauses, each about one variable; `parse_where` turns each into one `(option, value)`
pair in the vocabulary of `generate`'s keyword options:

    STOPS_AT(RESPONSE, "s")        -> ("stops_at", ("s",))
    STOPS_BEFORE(RESPONSE, "s")    -> ("stops_before", ("s",))
    INT(RESPONSE)                  -> ("type", int)
    REGEX(RESPONSE, r"...")        -> ("regex", "...")
    RESPONSE in ["a", "b"]         -> ("choices", ("a", "b"))
    not "s" in RESPONSE            -> ("excludes", ("s",))    (also "s" not in RESPONSE)
    len(TOKENS(RESPONSE)) < n      -> ("max_tokens", n - 1)
    len(RESPONSE) < n              -> ("max_chars", n - 1)

`<=` is accepted wherever `<` is, and the comparison may be written either way round
(`n > len(RESPONSE)`). `or` joins clauses about one variable when they are all `in` (the
union of the values) or all stopping phrases (stop at any of them). The text is parsed
with Python's `ast` module; anything outside this vocabulary is a ValueError that quotes
the part it cannot express. Query programs may also write an argument as a Python
expression of the program (`X in backpack`): the parser then records it as an operand,
which the program evaluates when the hole is reached (`WhereParser(operands=True)`).
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Callable, Optional

from ..errors import ClauseError
from ..core.text import check_text

VARIABLE = "RESPONSE"
_CALLS = {"STOPS_AT": "stops_at", "STOPS_BEFORE": "stops_before", "REGEX": "regex",
          "INT": "int"}
_STOPS = ("stops_at", "stops_before")
# the inclusive limit is the bound minus this; `n > len(...)` is read as `len(...) < n`
_UPPER = {ast.Lt: 1, ast.LtE: 0}
_MIRRORED = {ast.Gt: ast.Lt, ast.GtE: ast.LtE}

#: a clause argument: ("literal", value), or ("operand", index into the operands)
Argument = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class Clause:
    """One constraint on variable `subject`: `kind` is stops_at, stops_before, int,
    regex, choices, excludes, max_tokens or max_chars. For the length bounds the
    arguments are (bound, 1 for `<` or 0 for `<=`)."""

    subject: str
    kind: str
    arguments: tuple[Argument, ...]


def supported(variable: str) -> str:
    """The vocabulary, for error messages."""
    x = variable
    return (f'STOPS_AT({x}, "s"), STOPS_BEFORE({x}, "s"), INT({x}), REGEX({x}, r"..."), '
            f'{x} in [...], not "s" in {x}, len(TOKENS({x})) < n, len({x}) < n, combined '
            f'with "and" ("or" between "in" clauses or between stopping phrases)')


class WhereParser:
    """Parses where expressions into `Clause`s.

    `variable`: the only variable clauses may name (None: any name). `operands`: whether
    an argument may be a Python expression (collected in `self.operands`) rather than a
    literal. `source_of(node)` quotes a part of the source in errors.
    """

    def __init__(self, source_of: Callable[[ast.AST], str], variable: Optional[str] = None,
                 operands: bool = False):
        self.source_of = source_of
        self.variable = variable
        self.allow_operands = operands
        self.operands: list[ast.expr] = []

    def fail(self, node: ast.AST, why: str) -> ClauseError:
        return ClauseError(f"where: cannot express {self.source_of(node)!r}: {why}. "
                           f"Supported: {supported(self.variable or 'X')}", node)

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
                return [self.excludes(inner.left, inner.comparators[0])]
            raise self.fail(node, f"'not' applies only to '\"s\" in {self.variable or 'X'}'")
        raise self.fail(node, "not a constraint")

    def disjunction(self, node: ast.BoolOp) -> list[Clause]:
        parts = [c for value in node.values for c in self.clauses(value)]
        subjects = {c.subject for c in parts}
        kinds = {c.kind for c in parts}
        if len(subjects) == 1 and kinds == {"choices"}:
            return [Clause(parts[0].subject, "choices",
                           tuple(a for c in parts for a in c.arguments))]
        if len(subjects) == 1 and kinds <= set(_STOPS):
            return parts  # stopping at any of several phrases is what several stops mean
        raise self.fail(node, "'or' is not supported here: it joins only 'in' clauses, or "
                              "stopping phrases, of one variable")

    def subject(self, node: ast.AST) -> str:
        if self.variable is not None:
            if not (isinstance(node, ast.Name) and node.id == self.variable):
                raise self.fail(node, f"constraints apply to the variable {self.variable}")
        elif not isinstance(node, ast.Name):
            raise self.fail(node, "a constraint applies to a variable's name")
        return node.id

    def operand(self, node: ast.expr, why: str) -> Argument:
        if not self.allow_operands:
            raise self.fail(node, why)
        self.operands.append(node)
        return "operand", len(self.operands) - 1

    def string(self, node: ast.expr, empty: Optional[str] = None) -> Argument:
        """A string argument: a literal (checked now) or an operand."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = check_text(node.value, f"the string {node.value!r} in where")
            if empty and not value:
                raise self.fail(node, empty)
            return "literal", value
        if isinstance(node, ast.Constant):
            raise self.fail(node, "expected a string literal")
        return self.operand(node, "expected a string literal")

    def call(self, node: ast.Call) -> Clause:
        name = node.func.id.upper() if isinstance(node.func, ast.Name) else None
        if name not in _CALLS:
            raise self.fail(node, "unsupported function")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not supported")
        arity = 1 if name == "INT" else 2
        if len(node.args) != arity:
            raise self.fail(node, f"{name} takes {arity} argument(s)")
        subject = self.subject(node.args[0])
        if name == "INT":
            return Clause(subject, "int", ())
        empty = None if name == "REGEX" else "a stop string must not be empty"
        return Clause(subject, _CALLS[name], (self.string(node.args[1], empty),))

    def compare(self, node: ast.Compare) -> Clause:
        if len(node.ops) != 1:
            raise self.fail(node, "chained comparisons are not supported")
        op, left, right = node.ops[0], node.left, node.comparators[0]
        if isinstance(op, ast.NotIn):
            return self.excludes(left, right)
        if isinstance(op, ast.In):
            return Clause(self.subject(left), "choices", (self.choices(right),))
        if type(op) in _MIRRORED and _is_len(right):
            op, left, right = _MIRRORED[type(op)](), right, left
        if not _is_len(left):
            x = self.variable or "X"
            raise self.fail(node, f"only len({x}) and len(TOKENS({x})) can be compared, "
                                  "with an integer")
        if type(op) not in _UPPER:
            raise self.fail(node, "only upper bounds (<, <=) on lengths are supported")
        inner = left.args[0]  # type: ignore[attr-defined]
        kind = "max_chars"
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) \
                and inner.func.id == "TOKENS" and len(inner.args) == 1 and not inner.keywords:
            kind, inner = "max_tokens", inner.args[0]
        subject = self.subject(inner)
        strict = _UPPER[type(op)]
        if isinstance(right, ast.Constant):
            bound = right.value
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise self.fail(right, "a length bound must be an integer literal")
            if bound - strict < 0:
                raise self.fail(node, "no text is that short")
            argument: Argument = ("literal", bound)
        else:
            argument = self.operand(right, "a length bound must be an integer literal")
        return Clause(subject, kind, (argument, ("literal", strict)))

    def choices(self, node: ast.expr) -> Argument:
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(
                isinstance(e, ast.Constant) for e in node.elts):
            if not node.elts:
                raise self.fail(node, "the list of choices is empty")
            return "literal", tuple(dict.fromkeys(self.string(e)[1] for e in node.elts))
        return self.operand(node, "'in' needs a literal list of strings")

    def excludes(self, text: ast.expr, variable: ast.expr) -> Clause:
        subject = self.subject(variable)
        return Clause(subject, "excludes",
                      (self.string(text, "an excluded string must not be empty"),))


def _is_len(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "len" and len(node.args) == 1 and not node.keywords)


def parse_where(source: Any) -> list[tuple[str, Any]]:
    """Parse a `where` expression over `RESPONSE` into `(option, value)` pairs (see the
    module docstring).

    Raises TypeError if `source` is not a string, and ValueError naming the offending
    part if it is malformed or uses something outside the supported vocabulary.
    """
    if not isinstance(source, str):
        raise TypeError(f"where must be a str, got {type(source).__name__}")
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"malformed where expression {source!r}: {error.msg} "
                         f"(column {error.offset})") from None
    except (ValueError, RecursionError) as error:  # a null byte; absurd nesting
        raise ValueError(f"malformed where expression {source!r}: {error}") from None
    parser = WhereParser(lambda node: ast.get_source_segment(text, node) or ast.dump(node),
                         VARIABLE)
    return [_option(clause) for clause in parser.clauses(tree.body)]


def _option(clause: Clause) -> tuple[str, Any]:
    """A literal clause as `generate`'s (option, value)."""
    values = [value for _, value in clause.arguments]
    if clause.kind == "int":
        return "type", int
    if clause.kind == "regex":
        return "regex", values[0]
    if clause.kind == "choices":
        return "choices", tuple(dict.fromkeys(c for v in values for c in v))
    if clause.kind in ("max_tokens", "max_chars"):
        return clause.kind, values[0] - values[1]
    return clause.kind, (values[0],)  # stops_at, stops_before, excludes
