"""LMQL's `where` expressions over `RESPONSE`, parsed (never evaluated) into constraints.

A `where` expression is a conjunction (`and`) of clauses; each clause becomes one
`(option, value)` pair in the vocabulary of `generate`'s keyword options:

    STOPS_AT(RESPONSE, "s")        -> ("stops_at", ("s",))
    STOPS_BEFORE(RESPONSE, "s")    -> ("stops_before", ("s",))
    INT(RESPONSE)                  -> ("type", int)
    REGEX(RESPONSE, r"...")        -> ("regex", "...")
    RESPONSE in ["a", "b"]         -> ("choices", ("a", "b"))
    not "s" in RESPONSE            -> ("excludes", ("s",))    (also "s" not in RESPONSE)
    len(TOKENS(RESPONSE)) < n      -> ("max_tokens", n - 1)
    len(RESPONSE) < n              -> ("max_chars", n - 1)

`<=` is accepted wherever `<` is, and the comparison may be written either way round
(`n > len(RESPONSE)`). The text is parsed with Python's `ast` module; anything outside
this vocabulary is a ValueError that quotes the part it cannot express.
"""

from __future__ import annotations

import ast
from typing import Any

from ..text import check_text

VARIABLE = "RESPONSE"
_CALLS = {"STOPS_AT": "stops_at", "STOPS_BEFORE": "stops_before", "REGEX": "regex",
          "INT": "type"}
_SUPPORTED = ('STOPS_AT(RESPONSE, "s"), STOPS_BEFORE(RESPONSE, "s"), INT(RESPONSE), '
              'REGEX(RESPONSE, r"..."), RESPONSE in [...], not "s" in RESPONSE, '
              'len(TOKENS(RESPONSE)) < n, len(RESPONSE) < n, combined with "and"')
# the inclusive limit is the bound minus this; `n > len(...)` is read as `len(...) < n`
_UPPER = {ast.Lt: 1, ast.LtE: 0}
_MIRRORED = {ast.Gt: ast.Lt, ast.GtE: ast.LtE}


def parse_where(source: Any) -> list[tuple[str, Any]]:
    """Parse a `where` expression into `(option, value)` pairs (see the module docstring).

    Raises TypeError if `source` is not a string, and ValueError naming the offending
    part if it is malformed or uses something outside the supported vocabulary.
    """
    if not isinstance(source, str):
        raise TypeError(f"where must be a str, got {type(source).__name__}")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"malformed where expression {source!r}: {error.msg} "
                         f"(column {error.offset})") from None
    except (ValueError, RecursionError) as error:  # a null byte; absurd nesting
        raise ValueError(f"malformed where expression {source!r}: {error}") from None
    return _Parser(source.strip()).conjunction(tree.body)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, node: ast.AST, why: str) -> ValueError:
        part = ast.get_source_segment(self.source, node) or ast.dump(node)
        return ValueError(f"where: cannot express {part!r}: {why}. Supported: {_SUPPORTED}")

    def conjunction(self, node: ast.AST) -> list[tuple[str, Any]]:
        if isinstance(node, ast.BoolOp):
            if not isinstance(node.op, ast.And):
                raise self.fail(node, "only 'and' combines constraints ('or' is not supported)")
            return [clause for value in node.values for clause in self.conjunction(value)]
        if isinstance(node, ast.Call):
            return [self.call(node)]
        if isinstance(node, ast.Compare):
            return [self.compare(node)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = node.operand
            if isinstance(inner, ast.Compare) and len(inner.ops) == 1 \
                    and isinstance(inner.ops[0], ast.In):
                return [self.excludes(inner.left, inner.comparators[0])]
            raise self.fail(node, "'not' applies only to '\"s\" in RESPONSE'")
        raise self.fail(node, "not a constraint")

    def call(self, node: ast.Call) -> tuple[str, Any]:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _CALLS:
            raise self.fail(node, "unsupported function")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not supported")
        arity = 1 if name == "INT" else 2
        if len(node.args) != arity:
            raise self.fail(node, f"{name} takes {arity} argument(s)")
        self.variable(node.args[0])
        if name == "INT":
            return "type", int
        text = self.string(node.args[1])
        if name == "REGEX":
            return "regex", text
        if not text:
            raise self.fail(node.args[1], "a stop string must not be empty")
        return _CALLS[name], (text,)

    def compare(self, node: ast.Compare) -> tuple[str, Any]:
        if len(node.ops) != 1:
            raise self.fail(node, "chained comparisons are not supported")
        op, left, right = node.ops[0], node.left, node.comparators[0]
        if isinstance(op, ast.NotIn):
            return self.excludes(left, right)
        if isinstance(op, ast.In):
            self.variable(left)
            if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                raise self.fail(right, "'in' needs a literal list of strings")
            if not right.elts:
                raise self.fail(right, "the list of choices is empty")
            return "choices", tuple(dict.fromkeys(self.string(e) for e in right.elts))
        if type(op) in _MIRRORED and self.is_length(right):
            op, left, right = _MIRRORED[type(op)](), right, left
        if not self.is_length(left):
            raise self.fail(node, "only len(RESPONSE) and len(TOKENS(RESPONSE)) can be "
                                  "compared, with an integer")
        if type(op) not in _UPPER:
            raise self.fail(node, "only upper bounds (<, <=) on lengths are supported")
        option = self.length(left)
        bound = right.value if isinstance(right, ast.Constant) else None
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise self.fail(right, "a length bound must be an integer literal")
        limit = bound - _UPPER[type(op)]
        if limit < 0:
            raise self.fail(node, "no text is that short")
        return option, limit

    def excludes(self, text: ast.AST, variable: ast.AST) -> tuple[str, Any]:
        self.variable(variable)
        value = self.string(text)
        if not value:
            raise self.fail(text, "an excluded string must not be empty")
        return "excludes", (value,)

    @staticmethod
    def is_length(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "len" and len(node.args) == 1 and not node.keywords)

    def length(self, node: ast.Call) -> str:
        """`len(RESPONSE)` -> "max_chars"; `len(TOKENS(RESPONSE))` -> "max_tokens"."""
        inner = node.args[0]
        if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
                and inner.func.id == "TOKENS" and len(inner.args) == 1 and not inner.keywords):
            self.variable(inner.args[0])
            return "max_tokens"
        self.variable(inner)
        return "max_chars"

    def variable(self, node: ast.AST) -> None:
        if not (isinstance(node, ast.Name) and node.id == VARIABLE):
            raise self.fail(node, f"constraints apply to the variable {VARIABLE}")

    def string(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return check_text(node.value, f"the string {node.value!r} in where")
        raise self.fail(node, "expected a string literal")
