"""LMQL's `where` expressions, parsed (never evaluated) into clauses, then lowered.

One parser serves `generate(where=...)` (over the variable `RESPONSE`) and query
programs (over their holes' names, where an argument may be a Python expression of the
program: `X in backpack`, collected as an operand and evaluated when the hole is
reached). Parsing gives `Clause`s; `lower` turns a clause, with its operands' values,
into the primitives a `ConstraintSpec` holds (`primitives.PRIMITIVES`). So a query hands the
engine the same objects `generate(where=...)` builds: no text goes back and forth.

Functions (`STOPS_AT(X, "s")`, `INT(X)`, `REGEX(X, r)`, `STARTS_WITH(X, "s")`...) are the
`where` spellings of the registered keywords (`keywords.py`); this parser knows none by
name. The comparisons are its own:

    X in [...]   X == "s"                       one of these strings
    X not in [...]   X != "s"                   none of them
    "s" in X   "s" not in X                     contains s / does not
    len(X) OP n   len(TOKENS(X)) OP n           OP: < <= > >= == != (either way round)
    and, or, not                                over the above

`and` joins clauses (each applies). `or` and `not` combine clauses that shape the text
(everything above but stopping phrases, token counts and JSON) into one regular
constraint, enforced by the grammar; `or` also joins stopping phrases (stop at any of
them), upper or lower token bounds (the loosest holds), and a stopping phrase with
anything (a stopping phrase holds for every text, as in LMQL, so the `or` is the stop).
Whatever else is refused with a ValueError naming the combination.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Callable, Iterator, Optional

from ..core.text import check_text
from ..errors import ClauseError
from .primitives import REGULAR, STOPS, Pattern, Primitive, regex_escape
from .registry import keyword_named, where_keyword, where_spellings

VARIABLE = "RESPONSE"
# the comparisons `len(...) OP n` accept, and each one's negation and mirror image
_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

#: a clause argument: ("literal", value), or ("operand", index into the operands)
Argument = tuple[str, Any]

#: the clause kinds the parser makes itself (the others are keyword names)
COMPARISONS = ("equals", "in", "differs", "not_in", "contains", "excludes", "length",
               "any_of", "none_of")


@dataclasses.dataclass(frozen=True)
class Clause:
    """One constraint on the variable `subject`, as written in `source`.

    `kind` is a registered keyword's name (its `where` function was called; `arguments`
    holds the function's argument, if it takes one) or one of `COMPARISONS`: for
    "length", the arguments are (unit "chars" or "tokens", operator, bound); "any_of"
    and "none_of" hold their branches (each a tuple of clauses, all applying) in `parts`.
    """

    subject: str
    kind: str
    arguments: tuple[Argument, ...] = ()
    parts: tuple[tuple["Clause", ...], ...] = ()
    source: str = ""

    def operand_indices(self) -> Iterator[int]:
        """The operands this clause reads, in order (branches included)."""
        for kind, value in self.arguments:
            if kind == "operand":
                yield value
        for branch in self.parts:
            for clause in branch:
                yield from clause.operand_indices()

    @property
    def subjects(self) -> frozenset[str]:
        """Every variable the clause names (its branches' too)."""
        if self.kind in ("any_of", "none_of"):
            return frozenset(s for branch in self.parts for c in branch for s in c.subjects)
        return frozenset((self.subject,))

    @property
    def has_operands(self) -> bool:
        """True if lowering needs the program's values."""
        return next(self.operand_indices(), None) is not None

    def renumbered(self, new_index: Callable[[int], int]) -> "Clause":
        """The clause with each operand index `i` replaced by `new_index(i)` (called in
        the order of `operand_indices`)."""
        arguments = tuple((kind, new_index(value) if kind == "operand" else value)
                          for kind, value in self.arguments)
        parts = tuple(tuple(c.renumbered(new_index) for c in branch) for branch in self.parts)
        return dataclasses.replace(self, arguments=arguments, parts=parts)


def supported(variable: str) -> str:
    """The vocabulary, for error messages."""
    x = variable
    return (f"{', '.join(where_spellings(x))}, {x} in [...], {x} == \"s\", {x} != \"s\", "
            f"\"s\" in {x}, not \"s\" in {x}, len({x}) and len(TOKENS({x})) compared with an "
            "integer (<, <=, >, >=, ==, !=), combined with and/or/not")


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
            branches = tuple(tuple(self.clauses(value)) for value in node.values)
            return [Clause(self.one_subject(node, branches), "any_of", parts=branches,
                           source=self.source_of(node))]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.negation(node)
        if isinstance(node, ast.Call):
            return [self.call(node)]
        if isinstance(node, ast.Compare):
            return [self.compare(node)]
        raise self.fail(node, "not a constraint")

    def negation(self, node: ast.UnaryOp) -> list[Clause]:
        inner = node.operand
        if isinstance(inner, ast.Compare) and len(inner.ops) == 1:
            op = type(inner.ops[0])
            flipped = {ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Eq: ast.NotEq,
                       ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.LtE: ast.Gt, ast.Gt: ast.LtE,
                       ast.GtE: ast.Lt}.get(op)
            if flipped is not None:  # not (a OP b) is a (not OP) b
                compare = ast.Compare(inner.left, [flipped()], inner.comparators)
                return [dataclasses.replace(self.compare(compare),
                                            source=self.source_of(node))]
        branch = tuple(self.clauses(inner))
        return [Clause(self.one_subject(node, (branch,)), "none_of", parts=(branch,),
                       source=self.source_of(node))]

    def one_subject(self, node: ast.AST, branches: tuple[tuple[Clause, ...], ...]) -> str:
        """The variable `or`/`not` combines constraints on; in a query program (operands
        allowed) they may name several ("": `Clause.subjects` lists them), the others'
        conditions being folded when a hole is reached (`folding.py`)."""
        subjects = {s for branch in branches for c in branch for s in c.subjects}
        if len(subjects) == 1:
            return subjects.pop()
        if not self.allow_operands:
            raise self.fail(node, f"'or' and 'not' combine constraints on one variable, "
                                  f"here {', '.join(sorted(subjects))}")
        return ""

    def subject(self, node: ast.AST) -> str:
        if self.variable is not None:
            if not (isinstance(node, ast.Name) and node.id == self.variable):
                raise self.fail(node, f"constraints apply to the variable {self.variable}")
        elif not isinstance(node, ast.Name):
            raise self.fail(node, "a constraint applies to a variable's name")
        return node.id

    def is_subject(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and (self.variable is None
                                               or node.id == self.variable)

    def operand(self, node: ast.expr, why: str) -> Argument:
        if not self.allow_operands:
            raise self.fail(node, why)
        self.operands.append(node)
        return "operand", len(self.operands) - 1

    def string(self, node: ast.expr) -> Argument:
        """A string argument: a literal (checked now) or an operand."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return "literal", check_text(node.value, f"the string {node.value!r} in where")
        if isinstance(node, ast.Constant):
            raise self.fail(node, "expected a string literal")
        return self.operand(node, "expected a string literal")

    def strings(self, node: ast.expr) -> Argument:
        """A string, or a literal list of strings, or an operand."""
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(
                isinstance(e, ast.Constant) for e in node.elts):
            return "literal", tuple(dict.fromkeys(self.string(e)[1] for e in node.elts))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("set", "list", "tuple") and len(node.args) == 1 \
                and not node.keywords:  # LMQL's `X in set([...])`
            return self.strings(node.args[0])
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and self.allow_operands and not all(
                isinstance(e, ast.Constant) for e in node.elts):  # `X in [a, "b"]`
            return self.operand(node, "expected a string or a literal list of strings")
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Constant)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                return self.string(node)
            raise self.fail(node, "expected a string or a literal list of strings")
        return self.operand(node, "expected a string or a literal list of strings")

    def call(self, node: ast.Call) -> Clause:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        keyword = where_keyword(name.upper()) if name else None
        if keyword is None or keyword.where is None:
            raise self.fail(node, "unsupported function")
        form = keyword.where
        if node.keywords:
            raise self.fail(node, "keyword arguments are not supported")
        arity = 1 if form.argument is None else 2
        if len(node.args) != arity:
            raise self.fail(node, f"{form.name} takes {arity} argument(s)")
        subject = self.subject(node.args[0])
        arguments: tuple[Argument, ...] = ()
        if form.argument == "string":
            arguments = (self.string(node.args[1]),)
        elif form.argument == "strings":
            arguments = (self.strings(node.args[1]),)
        elif form.argument is not None:
            arguments = (self.value(node.args[1]),)
        return Clause(subject, keyword.name, arguments, source=self.source_of(node))

    def value(self, node: ast.expr) -> Argument:
        try:
            return "literal", ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return self.operand(node, "expected a literal")

    def compare(self, node: ast.Compare) -> Clause:
        if len(node.ops) != 1:
            raise self.fail(node, "chained comparisons are not supported")
        op, left, right = node.ops[0], node.left, node.comparators[0]
        source = self.source_of(node)
        if isinstance(op, (ast.In, ast.NotIn)):
            if self.is_subject(left):  # X in [...]
                kind = "in" if isinstance(op, ast.In) else "not_in"
                return Clause(self.subject(left), kind, (self.strings(right),), source=source)
            kind = "contains" if isinstance(op, ast.In) else "excludes"  # "s" in X
            return Clause(self.subject(right), kind, (self.strings(left),), source=source)
        if type(op) not in _OPS:
            raise self.fail(node, "unsupported comparison")
        symbol = _OPS[type(op)]
        if _is_len(right) or (self.is_subject(right) and not self.is_subject(left)):
            symbol, left, right = _MIRRORED[symbol], right, left
        if self.is_subject(left):  # X == "s", X != "s"
            if symbol not in ("==", "!="):
                raise self.fail(node, "a variable's text is compared with == or != only")
            kind = "equals" if symbol == "==" else "differs"
            return Clause(self.subject(left), kind, (self.string(right),), source=source)
        if not _is_len(left):
            x = self.variable or "X"
            raise self.fail(node, f"only {x}, len({x}) and len(TOKENS({x})) can be compared")
        inner = left.args[0]  # type: ignore[attr-defined]
        unit = "chars"
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) \
                and inner.func.id == "TOKENS" and len(inner.args) == 1 and not inner.keywords:
            unit, inner = "tokens", inner.args[0]
        subject = self.subject(inner)
        if isinstance(right, ast.Constant):
            bound = right.value
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise self.fail(right, "a length bound must be an integer")
            argument: Argument = ("literal", bound)
        else:
            argument = self.operand(right, "a length bound must be an integer literal")
        clause = Clause(subject, "length", (("literal", unit), ("literal", symbol), argument),
                        source=source)
        if argument[0] == "literal":
            lower(clause, ())  # an impossible bound fails here, quoting the source
        return clause


def _is_len(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "len" and len(node.args) == 1 and not node.keywords)


# lowering --------------------------------------------------------------------------------

def lower(clause: Clause, operands: tuple) -> list[Primitive]:
    """The primitives `clause` asks for, with `operands` (the program's values of its
    operand expressions) filled in. TypeError/ValueError naming the clause if a value does
    not fit or a combination cannot be enforced."""
    values = [operands[v] if kind == "operand" else v for kind, v in clause.arguments]
    try:
        return _lower(clause, values, operands)
    except (TypeError, ValueError) as error:
        if str(error).startswith("where: "):
            raise
        raise type(error)(f"where: {clause.source or clause.kind}: {error}") from None


def _lower(clause: Clause, values: list, operands: tuple) -> list[Primitive]:
    kind = clause.kind
    if kind == "length":
        return _length(clause.source or "len(...)", *values)
    if kind in ("equals", "differs"):
        text = _string(values[0], "the compared value")
        return [("choices", (text,))] if kind == "equals" else [
            ("pattern", Pattern(clause.source, op="not", parts=(("choices", (text,)),)))]
    if kind in ("in", "not_in"):
        choices = _strings(values[0], "the choices")
        if kind == "in":
            if not choices:
                raise ValueError("the list of choices is empty")
            return [("choices", choices)]
        return [("pattern", Pattern(clause.source, op="not", parts=(("choices", choices),)))]
    if kind in ("contains", "excludes"):
        texts = _strings(values[0], "the string")
        if not texts or not all(texts):
            raise ValueError("the string must not be empty")
        if kind == "excludes":
            return [("excludes", texts)]
        return [("pattern", Pattern(clause.source, regex=f"[\\s\\S]*{regex_escape(t)}[\\s\\S]*"))
                for t in texts]
    if kind == "any_of":
        return _any_of(clause, [[p for c in branch for p in lower(c, operands)]
                                for branch in clause.parts], operands)
    if kind == "none_of":
        _regular_only(clause, clause.parts, operands, "'not'")
        parts = [p for c in clause.parts[0] for p in lower(c, operands)]
        return [("pattern", Pattern(clause.source, op="not", parts=tuple(parts)))]
    keyword = keyword_named(kind)
    form = keyword.where
    assert form is not None
    return keyword.clauses(form.value(values[0] if values else None))


def _length(label: str, unit: str, symbol: str, bound: Any) -> list[Primitive]:
    if isinstance(bound, bool) or not isinstance(bound, int):
        raise TypeError(f"a length bound must be an int, got {type(bound).__name__} {bound!r}")
    least = {">": bound + 1, ">=": bound, "==": bound}.get(symbol)
    most = {"<": bound - 1, "<=": bound, "==": bound}.get(symbol)
    if most is not None and most < 0:
        raise ValueError("no text is that short")
    if unit == "tokens":
        if symbol == "!=":  # at exactly n tokens the text may not end
            return [("not_tokens", bound)] if bound >= 0 else []
        return ([("min_tokens", least)] if least else []) + (
            [("max_tokens", most)] if most is not None else [])
    if symbol == "!=":
        regex = (f"[\\s\\S]{{0,{bound - 1}}}|[\\s\\S]{{{bound + 1},}}" if bound
                 else "[\\s\\S]+")
        return [("pattern", Pattern(label, regex=regex))]
    out: list[Primitive] = []
    if least:
        out.append(("pattern", Pattern(label, regex=f"[\\s\\S]{{{least},}}")))
    if most is not None:
        out.append(("max_chars", most))
    return out


def _any_of(clause: Clause, branches: list[list[Primitive]], operands: tuple
            ) -> list[Primitive]:
    """One `or`: see the module docstring for what it joins."""
    kinds = [{k for k, _ in branch} for branch in branches]
    stop_only = [b for b, k in zip(branches, kinds) if k and k <= set(STOPS)]
    if stop_only:  # a stopping phrase holds for every text: the `or` is the stops
        mixed = [b for b, k in zip(branches, kinds) if k & set(STOPS) and not k <= set(STOPS)]
        if mixed:
            raise ValueError("'or' between a branch with a stopping phrase and other "
                             "constraints is not supported; accepted: 'or' between stopping "
                             "phrases, or between a stopping phrase and constraints without one")
        return [p for branch in stop_only for p in branch]
    if all(len(b) == 1 and k == {"choices"} for b, k in zip(branches, kinds)):
        return [("choices", tuple(dict.fromkeys(c for b in branches for c in b[0][1])))]
    for bound, loosest in (("max_tokens", max), ("min_tokens", min)):
        if all(len(b) == 1 and k == {bound} for b, k in zip(branches, kinds)):
            return [(bound, loosest(b[0][1] for b in branches))]
    _regular_only(clause, clause.parts, operands, "'or'")
    return [("pattern", Pattern(clause.source, op="or", parts=tuple(
        ("pattern", Pattern(clause.source, op="and", parts=tuple(b))) for b in branches)))]


_NAMES = {**{stop: "a stopping phrase" for stop in STOPS}, "max_tokens": "a token count",
          "min_tokens": "a token count", "json_schema": "a JSON schema"}


def _regular_only(clause: Clause, branches: tuple[tuple[Clause, ...], ...], operands: tuple,
                  what: str) -> None:
    """ValueError naming the first clause of `branches` that is not about the text's form."""
    for branch in branches:
        for part in branch:
            other = sorted({k for k, _ in lower(part, operands) if k not in REGULAR})
            if other:
                raise ValueError(
                    f"{what} cannot combine {part.source} ({_NAMES.get(other[0], other[0])}) "
                    f"with other constraints in {clause.source}; {what} combines constraints "
                    "on the text's form (in, ==, !=, len(X), REGEX, INT, STARTS_WITH, "
                    "\"s\" in X), and 'or' also joins stopping phrases, or token bounds of "
                    "one direction")


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    return check_text(value, what)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (check_text(value, what),)
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{what} must be a str or a collection of str, got "
                        f"{type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} must hold only str, got {type(item).__name__} {item!r}")
    return tuple(dict.fromkeys(check_text(item, what) for item in items))




@dataclasses.dataclass(frozen=True)
class Where:
    """A parsed `where` with its operands' values: what a query hands `generate(where=...)`
    for one hole (lowered as a `where` string is, without going through text)."""

    clauses: tuple[Clause, ...]
    operands: tuple = ()

    def primitives(self) -> list[Primitive]:
        """The primitives of all clauses."""
        return [p for clause in self.clauses for p in lower(clause, self.operands)]


@dataclasses.dataclass(frozen=True)
class _Shift:
    """An operand index moved by `offset`."""

    offset: int

    def __call__(self, index: int) -> int:
        return index + self.offset


def join_where(*parts: Optional[Where]) -> Optional[Where]:
    """The `Where` asking for all of `parts` (None for none): their clauses, each with its
    own operands (renumbered after the ones before it)."""
    clauses: list[Clause] = []
    operands: list = []
    for part in parts:
        if part is None:
            continue
        shift = _Shift(len(operands))
        clauses += [c.renumbered(shift) for c in part.clauses]
        operands += part.operands
    return Where(tuple(clauses), tuple(operands)) if clauses else None


def parse_where(source: Any) -> list[Primitive]:
    """Parse a `where` expression over `RESPONSE` (or take a `Where`) into primitives.

    Raises TypeError if `source` is neither, and ValueError naming the offending part if
    it is malformed or uses something outside the supported vocabulary.
    """
    if isinstance(source, Where):
        return source.primitives()
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
    return Where(tuple(parser.clauses(tree.body))).primitives()
