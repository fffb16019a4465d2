"""LMQL source to a Python coroutine function the runtime drives.

The program's Python is parsed with `ast` (after `layout.split` blanked the LMQL-only
clauses); each top-level string statement (also inside loops and conditionals, not
inside nested functions) becomes calls into the runtime:

    "Q: {q} [ANSWER]" where STOPS_AT(ANSWER, ".")
    ->  await __lmql__.text(f"Q: {q} ")
        ANSWER = await __lmql__.hole(<site>, <tactic>, (<operands>,))

so `{expr}` is ordinary Python evaluated in the program's scope, and a hole's value is
an ordinary local variable. Model output only ever becomes the value of such a variable:
it is never parsed as code. The function is built inside an outer function whose
parameters are the names captured from the defining scope (its closure).

Errors in the program are `SyntaxError`s whose line and column point into the source
the user wrote (a cell, a string, or the docstring in its .py file).
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import sys
import types
from typing import Any, Optional

from ..constraints.where import Clause, WhereParser
from ..errors import ClauseError, PromptStringError
from . import layout as layout_module
from .strings import ROLES, HolePart, RolePart, TextPart, parse_prompt

RUNTIME = "__lmql__"
_OUTER = "__lmql_outer__"
_INNER = "__lmql_query__"


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the program text sits in the user's file: its line 1 is `line` there;
    columns of line 1 are shifted by `first_col`, of later lines by `indent`."""

    filename: str = "<lmql>"
    line: int = 1
    first_col: int = 0
    indent: int = 0
    lines: tuple[str, ...] = ()  # the user's file lines, for error messages

    def position(self, line: int, col: int) -> tuple[int, int]:
        """A program (line, 0-based col) as the user's (line, 1-based col)."""
        return self.line + line - 1, col + (self.first_col if line == 1 else self.indent) + 1

    def error(self, message: str, line: int, col: int,
              kind: type[Exception] = SyntaxError) -> Exception:
        """A `kind` error at program (line, col): a SyntaxError carries the position as
        Python's do; any other kind says it in its message."""
        user_line, user_col = self.position(line, col)
        if not issubclass(kind, SyntaxError):
            return kind(f"{message} (in {self.filename}, line {user_line}, column {user_col})")
        text = self.lines[user_line - 1] if 0 < user_line <= len(self.lines) else None
        return kind(message, (self.filename, user_line, user_col, text))


@dataclasses.dataclass(frozen=True)
class HoleSite:
    """One hole in the program text: its variable, the clauses constraining it, and
    whether it is a `distribution` variable."""

    name: str
    clauses: tuple[Clause, ...]
    distribution: bool
    line: int
    decorators: tuple[str, ...] = ()  # `[@fn NAME]`: the decorator expressions' sources
    #: `[@message NAME]` (`from lmql_nb.lib.chat import message`): the chat's user sees it
    message: bool = False
    #: the other variables its clauses name (`Y == "b" or X == "a"`): their values come
    #: after the operands, each as a function (a later hole's raises NameError)
    others: tuple[str, ...] = ()
    #: those of `others` that are holes after it in its own prompt: not filled yet
    pending: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class DecoderExpression:
    """A decoder argument that is no literal (`argmax(n=n)`): Python source, evaluated
    where the query runs, with its arguments and the defining scope in reach."""

    source: str


@dataclasses.dataclass
class Program:
    """A compiled query program."""

    source: str
    origin: Origin
    outer: types.CodeType
    captures: list[str]  # the outer function's parameters, in order
    parameters: list[str]  # the query function's parameters (after the runtime)
    sites: list[HoleSite]
    decoder: Optional[str]
    decoder_arguments: dict[str, Any]
    model_source: Optional[str]  # the `from` clause's expression
    has_return: bool
    #: whether statements come before the decoder clause: they define the query's own
    #: globals (over the defining module's), as in LMQL
    has_prologue: bool = False
    #: names the program-level where constrains that are no holes (LMQL: variables of
    #: the query, which must be defined when it is called)
    where_names: list[str] = dataclasses.field(default_factory=list)
    checked: bool = False  # its literal constraints were checked (query functions do it once)

    @property
    def hole_names(self) -> list[str]:
        return list(dict.fromkeys(site.name for site in self.sites))


def compile_program(source: str, origin: Optional[Origin] = None,
                    parameters: Optional[list[str]] = None,
                    captures: tuple[str, ...] = ()) -> Program:
    """Compile LMQL `source`. `parameters` are the query function's argument names (None:
    the program's free names); `captures` are names of the defining scope to close over."""
    origin = origin or Origin(lines=tuple(source.split("\n")))
    return _Compiler(source, origin).compile(parameters, captures)


class _Compiler:
    def __init__(self, source: str, origin: Origin):
        self.source = source
        self.origin = origin
        self.header = 0
        self.python = ""  # what ast parses: the program with its LMQL clauses blanked
        self.sites: list[HoleSite] = []
        self.program_analysers: list[tuple[WhereParser, list[Clause]]] = []
        self.statement_clauses: dict[tuple[int, int], list[layout_module.Clause]] = {}
        self.program_clauses: list[Clause] = []
        self.distribution: Optional[tuple[str, ast.expr, layout_module.Clause]] = None
        self.where_names: list[str] = []

    def error(self, message: str, line: int, col: int,
              kind: type[Exception] = SyntaxError) -> Exception:
        return self.origin.error(message, line - self.header, col, kind)

    def clause_error(self, error: ClauseError, clause: layout_module.Clause) -> Exception:
        """A ValueError located at the clause's offending part."""
        node_line = getattr(error.node, "lineno", 1)
        col = getattr(error.node, "col_offset", 0) + (clause.col if node_line == 1 else 0)
        return self.origin.error(str(error), clause.line + node_line - 1, col, ValueError)

    # -- the pieces ------------------------------------------------------------------------

    def compile(self, parameters: Optional[list[str]], captures: tuple[str, ...]) -> Program:
        try:
            layout = layout_module.split(self.source)
        except SyntaxError as error:
            raise self.origin.error(error.msg, error.lineno or 1, (error.offset or 1) - 1,
                                    type(error)) from None
        python = layout.python
        if layout.body_indented:
            python, self.header = "if 1:\n" + python, 1
        self.python = python
        try:
            tree = ast.parse(python, mode="exec")
        except SyntaxError as error:
            raise self.error(error.msg, error.lineno or 1, (error.offset or 1) - 1,
                             type(error)) from None
        # an indented body ends at the first statement at column 0; what follows it
        # (`argmax "..." where ...` then `return X`) is still the program's
        body = (tree.body[0].body + tree.body[1:]  # type: ignore[attr-defined]
                if self.header else tree.body)
        _raw_query_docstrings(body, python)
        decoder, decoder_arguments = self.decoder(layout.decoder)
        model_source, program_where, distribution = self.tail(layout.tail)
        self.statement_clauses = layout.statement_clauses
        self.program_clauses = program_where
        self.distribution = distribution
        body = self.transform(body)
        body = [_Calls().visit(statement) for statement in body]
        self.check_names(program_where, distribution)
        body = _mark_no_value(body)
        body = _rename_print(body)
        body = _rename_context(body)
        # the decoder's and the from clause's expressions read the program's variables too
        clause_sources = [v.source for v in decoder_arguments.values()
                          if isinstance(v, DecoderExpression)] + [model_source or ""]
        clause_reads = [ast.Expr(ast.parse(f"(\n{source}\n)", mode="eval").body)
                        for source in clause_sources if source.strip()]
        body_free = _free_names(body)
        # (the clauses always see `lmql` / `lmql_nb`: not an argument for them alone)
        free = [n for n in _free_names(body + clause_reads)  # type: ignore[operator]
                if n in body_free or n not in ("lmql", "lmql_nb")]
        if parameters is None:
            parameters = [n for n in free if not hasattr(builtins, n) and n not in captures]
        captured = [n for n in captures if n in free and n not in parameters]
        prologue = _prologue_names(body, layout.prologue_lines, set(parameters))
        if prologue:  # LMQL: what the prologue defines are the query's globals
            body = [ast.copy_location(ast.Global(prologue), body[0])] + body
        module = self.wrap(body, parameters, captured)
        code = compile(module, self.origin.filename, "exec", dont_inherit=True)
        outer = next(c for c in code.co_consts
                     if isinstance(c, types.CodeType) and c.co_name == _OUTER)
        return Program(self.source, self.origin, outer, captured, parameters, self.sites,
                       decoder, decoder_arguments, model_source, _has_return(body),
                       bool(layout.prologue_lines), self.where_names)

    def decoder(self, clause: Optional[layout_module.Clause]) -> tuple[Optional[str], dict]:
        if clause is None:
            return None, {}
        arguments: dict[str, Any] = {}
        if clause.source.strip():
            try:
                call = ast.parse(f"f({clause.source})", mode="eval").body
            except SyntaxError as error:
                raise self.origin.error(f"malformed decoder arguments: {error.msg}", clause.line,
                                        clause.col) from None
            assert isinstance(call, ast.Call)
            if call.args:
                raise self.origin.error(f"the decoder {clause.keyword} takes keyword arguments "
                                        f"only, e.g. {clause.keyword}(n=2)", clause.line,
                                        clause.col)
            for keyword in call.keywords:
                try:
                    arguments[str(keyword.arg)] = ast.literal_eval(keyword.value)
                except ValueError:  # an expression: evaluated in the program's scope
                    arguments[str(keyword.arg)] = DecoderExpression(ast.unparse(keyword.value))
        return clause.keyword, arguments

    def tail(self, clauses: list[layout_module.Clause]):
        model_source, where, distribution = None, [], None
        for clause in clauses:
            if not clause.source:
                raise self.origin.error(f"the {clause.keyword} clause is empty", clause.line,
                                        clause.col)
            expression = self.expression(clause)
            if clause.keyword == "from":
                model_source = clause.source
            elif clause.keyword == "where":
                where.extend(self.analyse(expression, clause))
            else:
                distribution = self.distribution_clause(expression, clause)
        return model_source, where, distribution

    def expression(self, clause: layout_module.Clause) -> ast.expr:
        try:
            tree = ast.parse("(" + clause.source + ")", mode="eval")
        except SyntaxError as error:
            line = clause.line + (error.lineno or 1) - 1
            col = (error.offset or 2) - 2 + (clause.col if (error.lineno or 1) == 1 else 0)
            raise self.origin.error(f"in the {clause.keyword} clause: {error.msg}", line,
                                    col) from None
        # positions relative to the clause's source: the "(" shifted line 1 by one column
        for node in ast.walk(tree):
            if getattr(node, "lineno", 0) == 1:
                node.col_offset -= 1  # type: ignore[attr-defined]
            if getattr(node, "end_lineno", 0) == 1:
                node.end_col_offset -= 1  # type: ignore[attr-defined]
        return _fold_negative_numbers(tree.body)

    @staticmethod
    def analyser(clause: layout_module.Clause) -> WhereParser:
        return WhereParser(lambda node: ast.get_source_segment(clause.source, node)
                           or ast.dump(node), operands=True)

    def analyse(self, expression: ast.expr, clause: layout_module.Clause) -> list[Clause]:
        analyser = self.analyser(clause)
        try:
            clauses = analyser.clauses(expression)
        except ClauseError as error:
            raise self.clause_error(error, clause) from None
        except (TypeError, ValueError) as error:  # a literal the constraint cannot take
            raise self.origin.error(str(error), clause.line, clause.col, ValueError) from None
        self.program_analysers.append((analyser, clauses))
        return clauses

    def distribution_clause(self, expression: ast.expr, clause: layout_module.Clause):
        if not (isinstance(expression, ast.Compare) and len(expression.ops) == 1
                and isinstance(expression.ops[0], ast.In)
                and isinstance(expression.left, ast.Name)):
            raise self.origin.error("a distribution clause reads 'VARIABLE in [values]'",
                                    clause.line, clause.col)
        values = expression.comparators[0]
        name = expression.left.id
        if isinstance(values, (ast.Constant, ast.Dict, ast.JoinedStr)) or (
                isinstance(values, (ast.List, ast.Tuple, ast.Set)) and (not values.elts or any(
                    isinstance(v, ast.Constant) and (not isinstance(v.value, str) or not v.value)
                    for v in values.elts))):
            raise self.origin.error(f"distribution {name} in ...: the values must be a "
                                    "non-empty list of non-empty strings, e.g. "
                                    f'distribution {name} in ["yes", "no"]', clause.line,
                                    clause.col, ValueError)
        return name, values, clause

    # -- prompt statements -----------------------------------------------------------------

    def transform(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for statement in statements:
            if isinstance(statement, ast.Expr) and _is_prompt(statement.value):
                result.extend(self.prompt(statement))
                continue
            for field in ("body", "orelse", "finalbody"):
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    break
                inner = getattr(statement, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    setattr(statement, field, self.transform(inner) or [ast.Pass()])
            for handler in getattr(statement, "handlers", []):
                handler.body = self.transform(handler.body) or [ast.Pass()]
            for case in getattr(statement, "cases", []):
                case.body = self.transform(case.body) or [ast.Pass()]
            if isinstance(statement, (ast.While, ast.For, ast.AsyncFor)):
                # each iteration gives the event loop a chance: a loop stays cancellable
                tick = ast.Expr(_call("tick", []))
                ast.copy_location(tick, statement.body[0])
                ast.fix_missing_locations(tick)
                statement.body.insert(0, tick)
            result.append(statement)
        return result

    def prompt(self, statement: ast.Expr) -> list[ast.stmt]:
        node = statement.value
        line, col = node.lineno, node.col_offset
        if isinstance(node, ast.JoinedStr):
            raise self.error("prompt strings are f-strings already: drop the f prefix "
                             "(write {expr} in a plain string)", line, col)
        value = node.value  # type: ignore[attr-defined]
        if node.end_lineno and node.end_lineno > line:
            value = _dedent_continuation(value, statement.col_offset)
        try:
            parts = parse_prompt(value)
        except PromptStringError as error:
            raise self.error(str(error), *self.locate(node, error.offset)) from None
        clauses = self.statement_clauses.get((line - self.header, col), [])
        where: list[Clause] = []
        distribution = None
        analysers = []
        for clause in clauses:
            if not clause.source:
                wanted = "a constraint" if clause.keyword == "where" else "VARIABLE in [values]"
                raise self.origin.error(f"the {clause.keyword} clause is empty: write "
                                        f"{wanted} after {clause.keyword}", clause.line,
                                        clause.col)
            expression = self.expression(clause)
            if clause.keyword == "where":
                analyser = self.analyser(clause)
                try:
                    found = analyser.clauses(expression)
                except ClauseError as error:
                    raise self.clause_error(error, clause) from None
                except (TypeError, ValueError) as error:  # a literal it cannot take
                    raise self.origin.error(str(error), clause.line, clause.col,
                                            ValueError) from None
                where.extend(found)
                analysers.append((analyser, found))
            else:
                distribution = self.distribution_clause(expression, clause)
        holes = [p for p in parts if isinstance(p, HolePart)]
        names = {h.name for h in holes}
        for c in where:
            if not c.subjects & names:
                src = next(cl for cl in clauses if cl.keyword == "where")
                raise self.origin.error(
                    f"where constrains {', '.join(sorted(c.subjects))}, which is not a hole "
                    "of this prompt "
                    f"(its holes: {', '.join(sorted(names)) or 'none'})", src.line, src.col,
                    ValueError)
        if distribution is not None:
            name, _, clause = distribution
            if not holes or holes[-1].name != name or not isinstance(parts[-1], HolePart):
                raise self.origin.error(
                    f"distribution {name}: the prompt must end with the hole [{name}]",
                    clause.line, clause.col, ValueError)
        out: list[ast.stmt] = []
        for part in parts:
            if isinstance(part, TextPart):
                out.extend(self.text_calls(part, node))
                continue
            if isinstance(part, RolePart):
                if part.role not in ROLES:
                    raise self.error(f"{{:{part.role}}} is not a chat tag; accepted: "
                                     f"{', '.join('{:' + r + '}' for r in ROLES)}",
                                     *self.locate(node, part.offset))
                out.append(ast.Expr(_call("role", [ast.Constant(part.role)])))
                continue
            is_distribution = distribution is not None and part is holes[-1]
            program_distribution = (self.distribution is not None
                                    and self.distribution[0] == part.name)
            mine = tuple(c for c in where if part.name in c.subjects) + tuple(
                c for c in self.program_clauses if part.name in c.subjects)
            operands, renumbered = self.operands_for(mine, analysers + self.program_analysers)
            others = sorted({s for c in mine for s in c.subjects} - {part.name})
            operands += [_value_function(name) for name in others]
            operands = [_placed(copy.deepcopy(o), statement) for o in operands]
            later = {h.name for h in holes[holes.index(part) + 1:]} - {part.name}
            site = len(self.sites)
            self.sites.append(HoleSite(part.name, renumbered,
                                       is_distribution or program_distribution, line - self.header,
                                       part.decorators, _is_message(part.decorators),
                                       tuple(others), frozenset(later & set(others))))
            if is_distribution or program_distribution:
                chosen = distribution if is_distribution else self.distribution
                assert chosen is not None
                values = chosen[1]
                if mine:
                    raise self.error(f"{part.name} is a distribution variable: it takes no "
                                     "where constraints", line, col, ValueError)
                call = _call("distribution", [ast.Constant(site),
                                              _placed(copy.deepcopy(values), statement)])
            else:
                self.refuse_unrun(part, node)
                tactic = self.tactic(part, node)
                decorators = [self.decorator(source, part, node) for source in part.decorators]
                call = _call("hole", [ast.Constant(site), tactic,
                                      ast.Tuple(operands, ast.Load()),
                                      ast.Tuple(decorators, ast.Load())])
            out.append(ast.Assign([ast.Name(part.name, ast.Store())], call))
        for item in out:
            ast.copy_location(item, statement)
            ast.fix_missing_locations(item)
        return out

    @staticmethod
    def operands_for(clauses: tuple[Clause, ...], analysers: list[tuple[WhereParser, list[Clause]]]
                     ) -> tuple[list[ast.expr], tuple[Clause, ...]]:
        """The operand expressions of `clauses` (to evaluate where the hole is reached),
        and the clauses with their operands renumbered 0.. in that order."""
        nodes: list[ast.expr] = []
        renumbered = []
        for clause in clauses:
            analyser = next(a for a, found in analysers if any(c is clause for c in found))

            def number(index: int, analyser: WhereParser = analyser) -> int:
                nodes.append(analyser.operands[index])
                return len(nodes) - 1

            renumbered.append(clause.renumbered(number))
        return nodes, tuple(renumbered)

    def tactic(self, part: HolePart, node: ast.expr) -> ast.expr:
        if part.tactic is None:
            return ast.Constant(None)
        try:
            tactic = ast.parse(part.tactic, mode="eval").body
        except SyntaxError as error:
            raise self.error(f"malformed type of [{part.name}]: {error.msg}",
                             *self.locate(node, part.offset)) from None
        if isinstance(tactic, ast.Call):
            # `[X: q(args)]`: handed to the runtime uncalled (a nested query runs there)
            tactic = ast.Call(ast.Attribute(ast.Name(RUNTIME, ast.Load()), "defer", ast.Load()),
                              [tactic.func, *tactic.args], tactic.keywords)
        return _placed(tactic, node)  # type: ignore[arg-type]

    def refuse_unrun(self, part: HolePart, node: ast.expr) -> None:
        """Hole forms LMQL 0.7.3 parses but does not run: a per-hole decoder and a call in
        place of the hole's name."""
        if part.decoder is not None:
            raise self.error(f"[{part.decoder} {part.name}]: a decoder per hole is not "
                             "supported (LMQL 0.7.3 parses it and refuses it too); set the "
                             "program's decoder", *self.locate(node, part.offset),
                             kind=ValueError)
        if part.call is not None:
            raise self.error(f"[{part.call}]: a call in place of a hole's name is not "
                             f"supported (LMQL 0.7.3 parses it and cannot run it); write the "
                             f"hole [{part.name}...] with a name and call the function in the "
                             "program", *self.locate(node, part.offset), kind=ValueError)

    def decorator(self, source: str, part: HolePart, node: ast.expr) -> ast.expr:
        try:
            expression = ast.parse(source, mode="eval").body
        except SyntaxError as error:
            raise self.error(f"malformed decorator @{source} of [{part.name}]: {error.msg}",
                             *self.locate(node, part.offset)) from None
        return _placed(expression, node)  # type: ignore[arg-type]

    def text_calls(self, part: TextPart, node: ast.expr) -> list[ast.stmt]:
        """The text's statements: `__lmql__.text(f"...")`, and for each interpolated tool
        call (`{calc(EXPR)}`) `__lmql__.tool_text("calc(EXPR)", f"{calc(EXPR)}")`, which
        the trace shows as a step of its own."""
        try:
            fstring = ast.parse("f" + repr(part.fstring), mode="eval").body
        except SyntaxError as error:
            raise self.error(f"in a {{...}} interpolation: {error.msg}",
                             node.lineno, node.col_offset) from None
        assert isinstance(fstring, ast.JoinedStr)
        out: list[ast.stmt] = []
        run: list[ast.expr] = []
        for value in fstring.values:
            if isinstance(value, ast.FormattedValue) and _is_tool_call(value.value):
                if run:
                    out.append(ast.Expr(_call("text", [ast.JoinedStr(run)])))
                    run = []
                source = ast.unparse(value.value)
                out.append(ast.Expr(_call("tool_text", [ast.Constant(source),
                                                        ast.JoinedStr([value])])))
            else:
                run.append(value)
        if run or not out:
            out.append(ast.Expr(_call("text", [ast.JoinedStr(run)])))
        return out

    def locate(self, node: ast.expr, offset: int) -> tuple[int, int]:
        """The (line, col) of character `offset` of a string literal's value, where the
        literal's source shows it verbatim; else the literal's start."""
        segment = ast.get_source_segment(self.python, node) or ""
        value = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
        body_start = next((i for i, c in enumerate(segment) if c in "\"'"), 0)
        quote = 3 if segment[body_start:body_start + 3] in ('"""', "'''") else 1
        inner = segment[body_start + quote:]
        if inner.startswith(value[:offset + 1]):
            before = inner[:offset]
            lines = before.split("\n")
            if len(lines) == 1:
                return node.lineno, node.col_offset + body_start + quote + offset
            return node.lineno + len(lines) - 1, len(lines[-1])
        return node.lineno, node.col_offset

    def check_names(self, program_where: list[Clause], distribution) -> None:
        names = {site.name for site in self.sites}
        # as in LMQL, the program's where may name a variable that is no hole: it is the
        # query's variable (checked to be defined when the query is called) and
        # constrains no generation
        self.where_names = sorted({s for c in program_where for s in c.subjects
                                   if s not in names})
        if distribution is not None and distribution[0] not in names:
            raise self.origin.error(
                f"distribution {distribution[0]}: the program has no hole [{distribution[0]}]",
                distribution[2].line, distribution[2].col, ValueError)

    def wrap(self, body: list[ast.stmt], parameters: list[str],
             captured: list[str]) -> ast.Module:
        def arguments(names: list[str]) -> ast.arguments:
            return ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in names], vararg=None,
                                 kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])

        extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
        inner = ast.AsyncFunctionDef(_INNER, arguments([RUNTIME] + parameters), body, [],
                                     None, None, **extra)
        outer = ast.FunctionDef(_OUTER, arguments(captured),
                                [inner, ast.Return(ast.Name(_INNER, ast.Load()))], [], None,
                                None, **extra)
        module = ast.Module([outer], type_ignores=[])
        for node in (inner, outer):
            node.lineno, node.col_offset = 1, 0
        ast.fix_missing_locations(module)
        ast.increment_lineno(module, self.origin.line - 1 - self.header)
        return module


#: calls interpolated into the prompt that are formatting, not tools
_NOT_TOOLS = {"str", "repr", "len", "int", "float", "format", "round", "abs", "min", "max",
              "sorted", "list", "tuple", "dict", "set", "bool", "chr", "ord", "hex", "bin"}


def _is_tool_call(node: ast.expr) -> bool:
    """Whether an interpolation `{...}` calls a tool: a call of a plain name (`calc(x)`,
    `eval(cmd)`) other than a builtin conversion such as `str` or `len`."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id not in _NOT_TOOLS)


def _is_runtime_call(node: ast.Call) -> bool:
    function = node.func
    return (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
            and function.value.id == RUNTIME)


#: calls left as Python makes them: the ones that read their caller's frame (LMQL's list
#: and the like) and the runtime's own `print` and `input`
_PLAIN_CALLS = {"print", "input", "eval", "exec", "locals", "globals", "vars", "dir", "super",
                "breakpoint"}


class _Calls(ast.NodeTransformer):
    """Calls in the program's own statements, made as LMQL makes them (its compiler's
    `FunctionCallTransformation`): a call of an async function or of a query is awaited
    where it is made, awaited or not, so `q(x)` in a program gives `q`'s result, not a
    coroutine.

        f(args)        ->  await __lmql__.call("f(args)", f, args)
        await f(args)  ->  await __lmql__.tool("f(args)", f, args)

    `call` awaits an async function or runs a query, else calls `f` plainly; `tool` also
    awaits what a plain function returns if it is awaitable, and a sync one's value is
    taken as it is (LMQL drops `await`). Both record an awaited call as a step of the
    trace (an interpolated `{tool(...)}` is recorded once, by its `tool_text`). Calls
    that read their caller's frame (`locals()`, `eval`...) and the runtime's `print`
    and `input` are left plain; functions, lambdas, classes and generator expressions
    defined in the program are left as they are (no `await` can go there)."""

    def __init__(self) -> None:
        self.quiet = False

    def visit_Await(self, node: ast.Await) -> ast.AST:
        call = node.value
        if not isinstance(call, ast.Call) or _is_runtime_call(call) or _plain(call):
            self.generic_visit(node)
            return node
        return ast.copy_location(self._wrapped("tool", call), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _is_runtime_call(node):
            quiet = self.quiet
            self.quiet = quiet or (isinstance(node.func, ast.Attribute)
                                   and node.func.attr == "tool_text")
            self.generic_visit(node)
            self.quiet = quiet
            return node
        if _plain(node):
            self.generic_visit(node)
            return node
        return ast.copy_location(self._wrapped("call", node), node)

    def _wrapped(self, method: str, call: ast.Call) -> ast.Await:
        source = ast.unparse(call)
        self.generic_visit(call)
        label: ast.expr = ast.Constant(None if self.quiet and method == "call" else source)
        wrapped = _call(method, [label, call.func, *call.args])
        assert isinstance(wrapped.value, ast.Call)
        wrapped.value.keywords = call.keywords
        return wrapped

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        return node


def _plain(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id in _PLAIN_CALLS


def _fold_negative_numbers(node: ast.expr) -> ast.expr:
    """`-3` as the literal it is (Python's parser gives a minus applied to 3), so that
    constraints check it as they check `3`."""

    class Fold(ast.NodeTransformer):
        def visit_UnaryOp(self, unary: ast.UnaryOp) -> ast.AST:
            self.generic_visit(unary)
            operand = unary.operand
            if isinstance(unary.op, ast.USub) and isinstance(operand, ast.Constant) \
                    and type(operand.value) in (int, float):
                return ast.copy_location(ast.Constant(-operand.value), unary)  # type: ignore[operator]
            return unary

    return Fold().visit(node)


def _value_function(name: str) -> ast.expr:
    """`lambda: name`: a variable's value, read when its hole's conditions are folded
    (NameError while a later hole has not set it)."""
    return ast.Lambda(ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                    kw_defaults=[], kwarg=None, defaults=[]),
                      ast.Name(name, ast.Load()))


def _placed(node: ast.expr, where: ast.stmt) -> ast.expr:
    """`node` (parsed from a clause) moved to the statement it is evaluated in."""
    for sub in ast.walk(node):
        if "lineno" in sub._attributes:
            ast.copy_location(sub, where)
    return node


def _call(method: str, arguments: list[ast.expr]) -> ast.Await:
    function = ast.Attribute(ast.Name(RUNTIME, ast.Load()), method, ast.Load())
    return ast.Await(ast.Call(function, arguments, []))


def _is_prompt(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) \
        or isinstance(node, ast.JoinedStr)


def _dedent_continuation(value: str, indent: int) -> str:
    """A multi-line prompt string loses, on each continuation line, up to `indent`
    leading spaces (the indentation of its statement)."""
    lines = value.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        stripped = len(line) - len(line.lstrip(" "))
        out.append(line[min(stripped, indent):])
    return "\n".join(out)


def _raw_query_docstrings(body: list[ast.stmt], python: str) -> None:
    """A query function defined inside the program (`@lmql.query` over a `def` whose
    docstring is its program) keeps its docstring as written, escapes unprocessed, as
    `@lmql.query` reads a docstring from a .py file: a `\\n` in it is an escape inside
    the inner program's string, not a line break. (The program's code has no source file
    for `@lmql.query` to read it from.)"""
    for node in (n for statement in body for n in ast.walk(statement)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not any(
                _dotted_tail(d.func if isinstance(d, ast.Call) else d) == "query"
                for d in node.decorator_list):
            continue
        first = node.body[0] if node.body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        segment = ast.get_source_segment(python, first.value) or ""
        quote_at = next((i for i, c in enumerate(segment) if c in "\"'"), None)
        if quote_at is None or "r" in segment[:quote_at].lower():
            continue  # a raw string's value is already as written
        quote = 3 if segment[quote_at:quote_at + 3] in ('"""', "'''") else 1
        first.value.value = segment[quote_at + quote:len(segment) - quote]


def _dotted_tail(node: ast.expr) -> str:
    """The last name of `name` or `a.b.name` ("" for other expressions)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _rename_print(body: list[ast.stmt]) -> list[ast.stmt]:
    """`print` reads `__lmql__.print` (quiet while a beam replays) and `input` reads
    `__lmql__.input` (`await input()`: the chat's user's next message), unless the
    program defines its own."""
    stores = {n.id for s in body for n in ast.walk(s)
              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    renamed = {"print", "input"} - stores
    if not renamed:
        return body

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in renamed and isinstance(node.ctx, ast.Load):
                return ast.copy_location(
                    ast.Attribute(ast.Name(RUNTIME, ast.Load()), node.id, ast.Load()), node)
            return node

    return [Rename().visit(s) for s in body]


def _rename_context(body: list[ast.stmt]) -> list[ast.stmt]:
    """`context` reads `__lmql__.context` (the running execution, see query/context.py),
    except where the program or one of its functions binds the name itself."""

    def binds(nodes: list[Any]) -> bool:
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id == "context" and \
                        isinstance(sub.ctx, (ast.Store, ast.Del)):
                    return True
                if isinstance(sub, ast.arg) and sub.arg == "context":
                    return True
                if isinstance(sub, (ast.Import, ast.ImportFrom)) and any(
                        (a.asname or a.name).split(".")[0] == "context" for a in sub.names):
                    return True
        return False

    if any(binds([s]) and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef,
                                             ast.ClassDef)) for s in body):
        return body  # the program's own `context`

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id == "context" and isinstance(node.ctx, ast.Load):
                return ast.copy_location(
                    ast.Attribute(ast.Name(RUNTIME, ast.Load()), "context", ast.Load()), node)
            return node

        def visit_FunctionDef(self, node: Any) -> Any:
            return node if binds([node.args] + node.body) else self.generic_visit(node)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Lambda(self, node: ast.Lambda) -> Any:
            return node if binds([node.args]) else self.generic_visit(node)

    return [Rename().visit(s) for s in body]


def _free_names(body: list[ast.stmt]) -> list[str]:
    """Names the program reads and never binds, in order of first use."""
    bound: set[str] = {RUNTIME}
    loaded: list[str] = []
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, (ast.Store, ast.Del)):
                    bound.add(node.id)
                else:
                    loaded.append(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
                if not isinstance(node, ast.ClassDef):
                    args = node.args
                    for arg in args.posonlyargs + args.args + args.kwonlyargs:
                        bound.add(arg.arg)
                    for optional in (args.vararg, args.kwarg):
                        if optional is not None:
                            bound.add(optional.arg)
            elif isinstance(node, ast.Lambda):
                for arg in node.args.args + node.args.kwonlyargs:
                    bound.add(arg.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
    return [n for n in dict.fromkeys(loaded) if n not in bound]


def _prologue_names(body: list[ast.stmt], lines: int, parameters: set[str]) -> list[str]:
    """The names the statements before the decoder clause (its first `lines` lines) bind
    at the top level."""
    names: list[str] = []
    for statement in body:
        if statement.lineno > lines:
            break
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in statement.names
                      if a.name != "*"]
        else:
            targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
            for target in targets:
                for node in ast.walk(target) if target is not None else ():
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        names.append(node.id)
    return [n for n in dict.fromkeys(names) if n not in parameters]


def _mark_no_value(body: list[ast.stmt]) -> list[ast.stmt]:
    """LMQL's return rule: a program that ends without returning a value (no `return`,
    a bare `return`, or falling off the end of a path) gives its `LMQLResult`; `return
    None` gives None. Bare returns become `return __lmql__.NO_VALUE`, and so does the
    end of the body."""

    def no_value() -> ast.expr:
        return ast.Attribute(ast.Name(RUNTIME, ast.Load()), "NO_VALUE", ast.Load())

    class Mark(ast.NodeTransformer):
        def visit_Return(self, node: ast.Return) -> ast.AST:
            if node.value is None:
                node.value = ast.copy_location(no_value(), node)
            return node

        def visit_FunctionDef(self, node: ast.AST) -> ast.AST:
            return node  # a nested function's returns are its own

        visit_AsyncFunctionDef = visit_FunctionDef
        visit_ClassDef = visit_FunctionDef
        visit_Lambda = visit_FunctionDef

    marked = [Mark().visit(statement) for statement in body]
    end = ast.Return(no_value())
    if marked:
        ast.copy_location(end, marked[-1])
        end.lineno = end.end_lineno = getattr(marked[-1], "end_lineno", None) or marked[-1].lineno
    ast.fix_missing_locations(ast.Module([end], type_ignores=[]))
    return marked + [end]


def _has_return(body: list[ast.stmt]) -> bool:
    def visit(statements: list[ast.stmt]) -> bool:
        for statement in statements:
            if isinstance(statement, ast.Return):
                return True
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                      ast.Lambda)):
                continue
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(statement, field, None)
                if isinstance(inner, list) and visit(inner):
                    return True
            for handler in getattr(statement, "handlers", []):
                if visit(handler.body):
                    return True
        return False

    return visit(body)


def _is_message(decorators: tuple[str, ...]) -> bool:
    """Whether a hole's decorators include LMQL's `@message` (`lmql_nb.lib.chat.message`,
    by any import name ending in `message`)."""
    return any(source.split("(")[0].split(".")[-1] == "message" for source in decorators)
