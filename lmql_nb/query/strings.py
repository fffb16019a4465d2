"""A prompt string's parts: text (with `{expr}` interpolations), holes `[NAME: tactic]`.

`[[`, `]]` are literal brackets; `{{`, `}}` literal braces (as in an f-string, which a
text run becomes). Brackets inside `{...}` belong to the Python expression there.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from ..errors import PromptStringError


@dataclasses.dataclass(frozen=True)
class TextPart:
    """Text in f-string form: `{expr}` interpolates, `{{`/`}}` are literal braces."""

    fstring: str


@dataclasses.dataclass(frozen=True)
class HolePart:
    """`[name]` or `[name: tactic]`; `offset` is where the hole starts in the string."""

    name: str
    tactic: Optional[str]
    offset: int
    decorators: tuple[str, ...] = ()  # `[@fn @g(1) NAME]`: the decorator expressions
    decoder: Optional[str] = None  # `[argmax NAME]`: a per-hole decoder (parsed, refused)
    call: Optional[str] = None  # `[f(NAME)]`: a call in place of the name (parsed, refused)


@dataclasses.dataclass(frozen=True)
class RolePart:
    """`{:system}`, `{:user}` or `{:assistant}`: the text after it is that role's turn."""

    role: str
    offset: int


#: the chat roles a `{:role}` tag may name (LMQL's tags; OpenAI's roles)
ROLES = ("system", "user", "assistant")

Part = Union[TextPart, HolePart, RolePart]


def _skip_quoted(value: str, i: int) -> int:
    """The index after the quoted string starting at `value[i]`."""
    quote = value[i]
    j = i + 1
    while j < len(value) and value[j] != quote:
        j += 2 if value[j] == "\\" else 1
    return j + 1


def _closing(value: str, start: int, opening: str, closing: str) -> int:
    """The index of the bracket closing the one at `start` (quotes and nesting skipped)."""
    depth, i = 0, start
    while i < len(value):
        c = value[i]
        if c in "\"'":
            i = _skip_quoted(value, i)
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise PromptStringError(f"unclosed {opening!r} in prompt string (write {opening * 2!r} "
                            f"for a literal {opening!r})", start)


def parse_prompt(value: str) -> list[Part]:
    """Split a prompt string's value into text runs and holes."""
    parts: list[Part] = []
    text: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        pair = value[i:i + 2]
        if pair in ("[[", "]]"):
            text.append(c)
            i += 2
        elif pair in ("{{", "}}"):
            text.append(pair)
            i += 2
        elif pair == "{:":  # a tag, as LMQL parses it (the compiler accepts chat roles)
            end = value.find("}", i)
            if end < 0:
                raise PromptStringError("unclosed '{:' tag in prompt string (a chat tag reads "
                                        f"{', '.join('{:' + r + '}' for r in ROLES)})", i)
            role = value[i + 2:end].strip()
            if text:
                parts.append(TextPart("".join(text)))
                text = []
            parts.append(RolePart(role, i))
            i = end + 1
        elif c == "{":
            end = _closing(value, i, "{", "}")
            text.append(value[i:end + 1])
            i = end + 1
        elif c == "[":
            end = _closing(value, i, "[", "]")
            if text:
                parts.append(TextPart("".join(text)))
                text = []
            parts.append(_hole(value[i + 1:end], i))
            i = end + 1
        elif c == "]":  # a lone closing bracket is text, as in LMQL
            text.append(c)
            i += 1
        elif c == "}":
            raise PromptStringError("unmatched '}' in prompt string (write '}}' for a "
                                    "literal '}')", i)
        else:
            text.append(c)
            i += 1
    if text:
        parts.append(TextPart("".join(text)))
    return parts


def _decorators(content: str, offset: int) -> tuple[tuple[str, ...], str]:
    """`@expr` decorators at the start of a hole's content, and the rest of it. An
    expression ends at a space outside brackets and quotes (`@prefix("a b")` is one)."""
    decorators: list[str] = []
    rest = content.lstrip()
    while rest.startswith("@"):
        depth, i = 0, 1
        while i < len(rest):
            c = rest[i]
            if c in "\"'":
                i = _skip_quoted(rest, i)
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c.isspace() and depth == 0:
                break
            i += 1
        expression = rest[1:i]
        if not expression or depth != 0:
            raise PromptStringError(f"[{content}]: a decorator is @name or @name(arguments) "
                                    "before the hole's name, as in [@fn VALUE]", offset)
        decorators.append(expression)
        rest = rest[i:].lstrip()
    return tuple(decorators), rest


def _name_or_call(text: str, i: int) -> tuple[str, int]:
    """The dotted name, or call `name(...)`, starting at `text[i]` (after spaces), and
    the index after it."""
    while i < len(text) and text[i].isspace():
        i += 1
    start = i
    while i < len(text) and (text[i].isalnum() or text[i] in "_."):
        i += 1
    if i < len(text) and text[i] == "(" and i > start:
        depth = 0
        while i < len(text):
            c = text[i]
            if c in "\"'":
                i = _skip_quoted(text, i)
                continue
            depth += c == "("
            depth -= c == ")"
            i += 1
            if depth == 0:
                break
    return text[start:i], i


def _hole(content: str, offset: int) -> HolePart:
    decorators, rest = _decorators(content, offset)
    name, i = _name_or_call(rest, 0)
    decoder = None
    after, j = _name_or_call(rest, i)
    if after and (i == len(rest) or rest[i].isspace()):  # `[argmax NAME]`
        decoder, name, i = name, after, j
    tail = rest[i:].strip()
    if tail and not tail.startswith(":"):
        name = ""  # not a hole
    tactic = tail[1:].strip() or None if tail else None
    call = None
    if "(" in name and name.endswith(")"):
        call, name = name, name[:name.index("(")]
    if not name.isidentifier():
        raise PromptStringError(f"[{content}] is not a hole: a hole is [NAME] or "
                                "[NAME: type] with NAME a Python identifier, optionally "
                                "after decorators ([@fn NAME]) (write '[[' for a literal '[')",
                                offset)
    return HolePart(name, tactic, offset, decorators, decoder, call)
