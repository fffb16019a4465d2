"""LMQL's `lmql.language.qstrings` classes, built from lmql_nb's own prompt-string parser.

`test_qstrings.py` compares `QstringParser(mode).parse(s)` with lists of text runs,
`TemplateVariable`s, `FExpression`s and `TagExpression`s. The classes here are plain
records with LMQL's constructor arguments; `QstringParser.parse` runs
`lmql_nb.query.strings.parse_prompt` and only renames its parts, so the test checks
lmql_nb's parser: which holes it finds, their type, decoder and decorators, and the text
between them (kept as written: `[[` stays `[[`, as LMQL's parser keeps it).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Optional


@dataclasses.dataclass
class TemplateVariable:
    name: str
    type_expr: Optional[str] = None
    decoder_expr: Optional[str] = None
    decorator_exprs: Optional[list[str]] = None
    index: Optional[int] = None


@dataclasses.dataclass
class FExpression:
    expr: str


@dataclasses.dataclass
class DistributionVariable:
    name: str


@dataclasses.dataclass
class TagExpression:
    tag: str


class QstringParser:
    """`parse(s)`: the parts of prompt string `s` ("all": holes and `{...}`;
    "square-only": holes, `{...}` left as text)."""

    def __init__(self, mode: str = "all"):
        self.mode = mode

    def parse(self, value: str) -> list[Any]:
        from lmql_nb.query.strings import HolePart, RolePart, parse_prompt

        out: list[Any] = []
        position = 0
        index = 0
        for part in parse_prompt(value):
            if isinstance(part, (HolePart, RolePart)):
                if part.offset > position:
                    self._text(value[position:part.offset], out)
            if isinstance(part, HolePart):
                out.append(_variable(part, index))
                index += 1
                position = _hole_end(value, part.offset)
            elif isinstance(part, RolePart):  # a {:tag}
                out.append(TagExpression(":" + part.role))
                position = value.index("}", part.offset) + 1
        if position < len(value):
            self._text(value[position:], out)
        return out

    def _text(self, written: str, out: list[Any]) -> None:
        """A text run as written; in "all" mode its `{expr}` and `{:tag}` split out."""
        if self.mode != "all":
            out.append(written)
            return
        text, i = "", 0
        while i < len(written):
            pair = written[i:i + 2]
            if pair in ("{{", "}}"):
                text += pair
                i += 2
            elif written[i] == "{":
                end = _closing_brace(written, i)
                if text:
                    out.append(text)
                    text = ""
                inner = written[i + 1:end]
                out.append(TagExpression(inner) if inner.startswith(":") else FExpression(inner))
                i = end + 1
            else:
                text += written[i]
                i += 1
        if text:
            out.append(text)


def _closing_brace(value: str, start: int) -> int:
    depth = 0
    for i in range(start, len(value)):
        if value[i] == "{":
            depth += 1
        elif value[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unclosed '{{' in {value!r}")


def _hole_end(value: str, offset: int) -> int:
    """The index after the hole starting at `offset` (lmql_nb's parser's own scan)."""
    from lmql_nb.query.strings import _closing

    return _closing(value, offset, "[", "]") + 1


def _variable(part: Any, index: int) -> TemplateVariable:
    decorators = getattr(part, "decorators", None)
    return TemplateVariable(getattr(part, "call", None) or part.name, part.tactic,
                            getattr(part, "decoder", None),
                            list(decorators) if decorators else None, index)


def qstrings_module() -> types.ModuleType:
    """The stand-in `lmql.language.qstrings` module."""
    module = types.ModuleType("lmql.language.qstrings")
    for item in (QstringParser, TemplateVariable, FExpression, DistributionVariable,
                 TagExpression):
        setattr(module, item.__name__, item)
    return module
