"""The registry of constraint keywords: `Keyword` and its lookups (the built-in
keywords are defined in `keywords.py`, which says what each part of a `Keyword` is for)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Iterator, Optional

Clause = tuple[str, Any]


def _same(value: Any) -> Any:
    return value


@dataclasses.dataclass(frozen=True)
class WhereFunction:
    """A keyword as a `where` function: `NAME(X)` or `NAME(X, argument)`.

    `argument`: None (no argument), "string" (a string), "strings" (a string or a list of
    strings) or "value" (any Python literal); in query programs it may also be an
    expression of the program. `value(argument)` is the keyword's value it means.
    """

    name: str
    argument: Optional[str] = "string"
    value: Callable[[Any], Any] = _same


@dataclasses.dataclass(frozen=True)
class Flag:
    """A keyword as a magic's option: `flag` with `metavar`; `parse(text)` gives the
    value (ValueError naming what is accepted); a `repeatable` flag collects a list."""

    flag: str
    metavar: str
    help: str
    repeatable: bool = False
    parse: Callable[[str], Any] = str


@dataclasses.dataclass(frozen=True)
class Keyword:
    """One constraint keyword (see the module docstring)."""

    name: str
    clauses: Callable[[Any], list[Clause]]
    description: str
    where: Optional[WhereFunction] = None
    flag: Optional[Flag] = None
    structured_output: Optional[str] = None


_lock = threading.Lock()
_keywords: dict[str, Keyword] = {}

#: the names of the registered keywords (a live view: later registrations appear in it)
KEYWORD_NAMES = _keywords.keys()


def register_keyword(keyword: Keyword, replace: bool = False) -> Keyword:
    """Make `keyword` a constraint keyword (of `generate`, `where`, the magics and the
    server, as far as it declares them). A name, where function, flag or structured
    output that is taken raises ValueError unless `replace=True`."""
    if not keyword.name.isidentifier():
        raise ValueError(f"a constraint keyword is a Python name, got {keyword.name!r}")
    if keyword.where is not None and not keyword.where.name.isidentifier():
        raise ValueError(f"a where function is a Python name, got {keyword.where.name!r}")
    with _lock:
        if not replace:
            for other in _keywords.values():
                clash = [what for what, mine, theirs in (
                    ("name", keyword.name, other.name),
                    ("where function", _where_name(keyword), _where_name(other)),
                    ("flag", keyword.flag and keyword.flag.flag, other.flag and other.flag.flag),
                    ("structured output", keyword.structured_output, other.structured_output),
                ) if mine is not None and mine == theirs]
                if clash:
                    raise ValueError(f"the constraint keyword {keyword.name!r}: its "
                                     f"{clash[0]} is registered already (by {other.name!r})")
        _keywords[keyword.name] = keyword
    return keyword


def _where_name(keyword: Keyword) -> Optional[str]:
    return keyword.where.name.upper() if keyword.where is not None else None


def unregister_keyword(name: str) -> None:
    """Forget the keyword `name`."""
    with _lock:
        _keywords.pop(name, None)


def keywords() -> Iterator[Keyword]:
    """The registered keywords, in registration order."""
    with _lock:
        return iter(list(_keywords.values()))


def keyword_named(name: str) -> Keyword:
    """The keyword `name` (KeyError naming the registered ones if there is none)."""
    with _lock:
        if name in _keywords:
            return _keywords[name]
        raise KeyError(f"no constraint keyword {name!r}; registered: {', '.join(_keywords)}")


def where_keyword(function: str) -> Optional[Keyword]:
    """The keyword whose `where` function is `function` (upper case), if any."""
    return next((k for k in keywords() if _where_name(k) == function), None)


def where_spellings(variable: str) -> list[str]:
    """How each keyword with a `where` function is written over `variable`."""
    shapes = {None: "", "string": ', "s"', "strings": ', "s" or ["s", ...]', "value": ", v"}
    return [f"{k.where.name}({variable}{shapes.get(k.where.argument, ', ...')})"
            for k in keywords() if k.where is not None]


def clauses_of(options: dict[str, Any]) -> list[Clause]:
    """The clauses of every constraint keyword in `options`, in registration order."""
    return [clause for keyword in keywords() if keyword.name in options
            for clause in keyword.clauses(options[keyword.name])]
