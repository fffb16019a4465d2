"""The constraint keywords of `generate`, each declared once.

A keyword checks its value and says which *clauses* it adds. Clauses are the primitives
a `ConstraintSpec` holds, which the grammar (`grammar.py`) and the server dialects
(`backends/openai/dialect.py`) know how to enforce:

    ("stops_at", (str, ...))    ("stops_before", (str, ...))   ("choices", (str, ...))
    ("regex", str)              ("type", int)                  ("json_schema", str)
    ("max_chars", n)            ("max_tokens", n)              ("excludes", (str, ...))

So a keyword that these express is one `register_keyword(...)` call, wherever it lives
(tests/test_constraint_keywords.py declares one), and it combines with every other
keyword and with `where` as the built-in ones do. A new primitive is a field of
`ConstraintSpec` plus its grammar and its entry in each server dialect's table (which
refuses a field it does not know, so nothing is sent unenforced).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, Callable, Iterator

from ..core.text import check_text
from ..core.validation import check_strings
from .where import parse_where

Clause = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class Keyword:
    """One keyword of `generate`: `clauses(value)` checks the user's value (TypeError or
    ValueError naming what is accepted) and returns the clauses it adds."""

    name: str
    clauses: Callable[[Any], list[Clause]]
    description: str


_lock = threading.Lock()
_keywords: dict[str, Keyword] = {}

#: the names of the registered keywords (a live view: later registrations appear in it)
KEYWORD_NAMES = _keywords.keys()


def register_keyword(keyword: Keyword, replace: bool = False) -> Keyword:
    """Make `keyword.name` a constraint keyword of `generate` (and everything built on it).
    A name that is taken raises ValueError unless `replace=True`."""
    if not keyword.name.isidentifier():
        raise ValueError(f"a constraint keyword is a Python name, got {keyword.name!r}")
    with _lock:
        if keyword.name in _keywords and not replace:
            raise ValueError(f"the constraint keyword {keyword.name!r} is registered already")
        _keywords[keyword.name] = keyword
    return keyword


def unregister_keyword(name: str) -> None:
    """Forget the keyword `name`."""
    with _lock:
        _keywords.pop(name, None)


def keywords() -> Iterator[Keyword]:
    """The registered keywords, in registration order."""
    with _lock:
        return iter(list(_keywords.values()))


def clauses_of(options: dict[str, Any]) -> list[Clause]:
    """The clauses of every constraint keyword in `options`, in registration order."""
    return [clause for keyword in keywords() if keyword.name in options
            for clause in keyword.clauses(options[keyword.name])]


# the built-in keywords ----------------------------------------------------------------------

def _choices(value: Any) -> list[Clause]:
    if isinstance(value, str):
        raise TypeError("choices must be a list of str (a single str would be one choice; "
                        "pass [value] if that is meant)")
    choices = check_strings("choices", value, allow_empty_items=True)
    if not choices:
        raise ValueError("choices must not be empty")
    return [("choices", choices)]


def _regex(value: Any) -> list[Clause]:
    if not isinstance(value, str):
        raise TypeError(f"regex must be a str, got {type(value).__name__}")
    return [("regex", check_text(value, "regex"))]


def _type(value: Any) -> list[Clause]:
    if value is not int:
        raise ValueError(f"type={value!r} is not supported; type=int is (for other shapes "
                         "use regex= or json_schema=)")
    return [("type", int)]


def _json_schema(value: Any) -> list[Clause]:
    schema_of = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema_of):
        value = schema_of()  # a pydantic model class
    if not isinstance(value, dict):
        raise TypeError("json_schema must be a dict (a JSON Schema) or a pydantic model "
                        f"class, got {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False)  # key order matters: properties come in order
    except (TypeError, ValueError) as error:
        raise TypeError(f"json_schema is not JSON-serialisable: {error}") from None
    except RecursionError:
        raise ValueError("json_schema is nested too deeply to compile") from None
    return [("json_schema", check_text(text, "json_schema"))]


for _keyword in (
    Keyword("stops_at", lambda v: [("stops_at", check_strings("stops_at", v))],
            "ends at the first of these strings, keeping it"),
    Keyword("stops_before", lambda v: [("stops_before", check_strings("stops_before", v))],
            "ends at the first of these strings, dropping it"),
    Keyword("choices", _choices, "is exactly one of these strings"),
    Keyword("regex", _regex, "fully matches the pattern"),
    Keyword("type", _type, "is an integer (type=int)"),
    Keyword("json_schema", _json_schema, "is JSON valid against a JSON Schema dict or a "
                                         "pydantic model class"),
    Keyword("where", parse_where, "satisfies an LMQL expression over RESPONSE"),
):
    register_keyword(_keyword)
