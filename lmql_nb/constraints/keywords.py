"""The constraint keywords: each defined once, read by every layer that speaks them.

A `Keyword` is everything lmql_nb knows about one constraint:

- `name`: its keyword of `generate(...)` (and of everything built on it: `LLM`, `F`,
  `score`'s siblings, the server's engine calls);
- `clauses(value)`: checks the user's value (TypeError or ValueError naming what is
  accepted) and lowers it to *primitives*, the fields of a `ConstraintSpec`
  (`spec.PRIMITIVES`), which the grammar (`grammar.py`, llguidance masks), the decode
  loops (token bounds, stops) and the server dialects (`backends/openai/dialect.py`:
  vLLM's structured outputs, OpenAI's API) know how to enforce;
- `where`: its spelling as a function in `where` expressions and query programs
  (`STOPS_AT(X, "s")`), parsed by `where.WhereParser`;
- `flag`: its option in the `%%generate` magic (`--stops-at TEXT`);
- `structured_output`: the key of vLLM's `structured_outputs` that `lmql_nb serve`
  answers with this keyword.

So a keyword the primitives express is one `register_keyword(...)` call, and it works in
`generate`, `where`, query programs, the magics, against vLLM and OpenAI servers and in
`lmql_nb serve` (built-in `starts_with` below is such a definition). A new primitive is
a `ConstraintSpec` field plus its grammar and its entry in each server dialect's table
(which refuses a field it does not know, so nothing is sent unenforced).
"""

from __future__ import annotations

import json
from typing import Any

from ..core.text import check_text
from ..core.validation import check_strings
from .primitives import Pattern, regex_escape
from .registry import (KEYWORD_NAMES, Clause, Flag, Keyword, WhereFunction, clauses_of,
                       keyword_named, keywords, register_keyword, unregister_keyword,
                       where_keyword, where_spellings)
from .where import parse_where

__all__ = ["KEYWORD_NAMES", "Clause", "Flag", "Keyword", "Pattern", "WhereFunction",
           "clauses_of", "keyword_named", "keywords", "regex_escape", "register_keyword",
           "unregister_keyword", "where_keyword", "where_spellings"]


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


def _type_flag(text: str) -> type:
    if text != "int":
        raise ValueError(f"expected 'int' (the one type constraint), got {text!r}")
    return int


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


def _json_flag(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"expected a JSON schema, got {text!r} ({error})") from None


def _min_tokens(value: Any) -> list[Clause]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"min_tokens must be an int >= 0, got {value!r}")
    return [("min_tokens", value)] if value else []


def _int_flag(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _starts_with(value: Any) -> list[Clause]:
    if not isinstance(value, str) or not value:
        raise TypeError(f"starts_with must be a non-empty str, got {value!r}")
    text = check_text(value, "starts_with")
    return [("pattern", Pattern(f"STARTS_WITH(RESPONSE, {text!r})",
                                regex=regex_escape(text) + r"[\s\S]*"))]


for _keyword in (
    Keyword("stops_at", lambda v: [("stops_at", check_strings("stops_at", v))],
            "ends at the first of these strings, keeping it",
            where=WhereFunction("STOPS_AT", "strings"),
            flag=Flag("--stops-at", "TEXT", "stop after this text, keeping it (repeatable)",
                      repeatable=True)),
    Keyword("stops_before", lambda v: [("stops_before", check_strings("stops_before", v))],
            "ends at the first of these strings, dropping it",
            where=WhereFunction("STOPS_BEFORE", "strings"),
            flag=Flag("--stops-before", "TEXT", "stop before this text, dropping it "
                      "(repeatable)", repeatable=True)),
    Keyword("choices", _choices, "is exactly one of these strings",
            flag=Flag("--choice", "TEXT", "the completion is one of these (repeat for each)",
                      repeatable=True),
            structured_output="choice"),
    Keyword("regex", _regex, "fully matches the pattern",
            where=WhereFunction("REGEX"),
            flag=Flag("--regex", "RE", "the completion fully matches this pattern"),
            structured_output="regex"),
    Keyword("type", _type, "is an integer (type=int)",
            where=WhereFunction("INT", None, lambda _: int),
            flag=Flag("--type", "int", "the completion is an integer ('int')",
                      parse=_type_flag)),
    Keyword("json_schema", _json_schema, "is JSON valid against a JSON Schema dict or a "
                                         "pydantic model class",
            flag=Flag("--json-schema", "SCHEMA", "the completion is JSON valid against this "
                      "schema (JSON text)", parse=_json_flag),
            structured_output="json"),
    Keyword("starts_with", _starts_with, "begins with this text",
            where=WhereFunction("STARTS_WITH"),
            flag=Flag("--starts-with", "TEXT", "the completion begins with this text")),
    Keyword("min_tokens", _min_tokens, "has at least this many tokens (end-of-text and "
                                       "stop strings are masked until then)",
            flag=Flag("--min-tokens", "N", "generate at least N tokens", parse=_int_flag)),
    Keyword("where", parse_where, "satisfies an LMQL expression over RESPONSE",
            flag=Flag("--where", "EXPR", "an LMQL where-expression over RESPONSE")),
):
    register_keyword(_keyword)
