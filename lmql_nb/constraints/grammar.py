"""A `ConstraintSpec` as an llguidance grammar (for specs that shape the text).

Everything except JSON is regular, so it becomes one lexeme (`RESPONSE`) built with
llguidance's `&` (intersection) and `~` (complement) operators on regexes:

    BODY:            every regex & the choices & the integer shape & the length bound
                     & ~(.*EXCLUDED.*)
    FREE:            BODY & ~(.*STOP.*)                 no stop string: ends at end-of-sequence
    STOP_AT_i:       (BODY & (.*s_i) & FIRST) .*        BODY ends with the stop string s_i
    STOP_BEFORE_i:   ((BODY s_i) & FIRST) .*            BODY, then the stop string s_i
    FIRST:           ~(.*STOP.+)                        no stop string ends earlier

Stop strings themselves are found in the decoded text (`stops.new_stop`), as LMQL, vLLM
and OpenAI do, and the text is cut exactly there (`stops.cut_stop`: `stops_at` keeps the
stop string, `stops_before` drops it). A grammar that ended the text at the stop would
have to mask every token that reaches past it, and so distort the model's choices
wherever a token carries more than the stop (" time" for the stop " ", ".\n" for "."). So
the grammar only decides where a stop may occur (where the text kept is complete), and
lets the token that completes the stop carry anything after it (the trailing `.*`, cut
afterwards). When stop strings overlap at the end ("ab" and "b"), the longest counts.

JSON uses llguidance's JSON-schema compiler with fixed separators (", " and ": ") and
no other whitespace: free whitespace lets a model loop on spaces until max_tokens.
"""

from __future__ import annotations

import functools
import json

from .spec import ConstraintSpec

INT_REGEX = r" ?-?(?:0|[1-9][0-9]*)"  # int() reads it; no leading zeros to loop on
JSON_FORMAT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY = "/(?s:.*)/"
_META = set("\\.+*?()|[]{}^$#&-~/")


def escape(text: str) -> str:
    """`text` as a regex matching it literally (Rust regex syntax, inside a lark /.../)."""
    return "".join(_escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    if c in _META:
        return "\\" + c
    if ord(c) < 32 or c == "\x7f":  # control characters would break the lark source
        return f"\\x{{{ord(c):x}}}"
    return c


def _alternatives(strings) -> str:
    return "(?:" + "|".join(escape(s) for s in strings) + ")"


def to_lark(spec: ConstraintSpec) -> str:
    """The lark grammar of a shaped spec without a JSON schema."""
    from llguidance import regex_to_lark

    body = [f"/{regex_to_lark(r, '')}/" for r in spec.regexes]
    if spec.choices is not None:
        body.append(f"/{_alternatives(spec.choices)}/")
    if spec.integer:
        body.append(f"/{INT_REGEX}/")
    if spec.max_chars is not None:
        body.append(f"/(?s:.{{0,{spec.max_chars}}})/")
    if spec.excludes:
        body.append(f"~/(?s:.*){_alternatives(spec.excludes)}(?s:.*)/")
    lines = ["start: RESPONSE", f"BODY: {' & '.join(body)}"]
    if not spec.stops:
        lines.append("RESPONSE: BODY")
        return "\n".join(lines) + "\n"
    stop = _alternatives(spec.stops)
    lines += [f"FREE: BODY & ~/(?s:.*){stop}(?s:.*)/", f"FIRST: ~/(?s:.*){stop}(?s:.+)/"]
    names = ["FREE"]
    for kind, stops in (("AT", spec.stops_at), ("BEFORE", spec.stops_before)):
        for i, s in enumerate(stops):
            name = f"STOP_{kind}_{i}"
            ends = f"BODY & /(?s:.*){escape(s)}/" if kind == "AT" else f"(BODY /{escape(s)}/)"
            longer = [t for t in spec.stops if t != s and t.endswith(s)]
            if longer:  # a longer stop ending here takes precedence
                ends += f" & ~/(?s:.*){_alternatives(longer)}/"
            lines.append(f"{name}: ({ends} & FIRST) {ANY}")
            names.append(name)
    lines.append(f"RESPONSE: {' | '.join(names)}")
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=64)  # built by the option check, then again for the matcher
def compile_grammar(spec: ConstraintSpec) -> str:
    """The llguidance grammar (a string for `LLMatcher`) of a shaped spec."""
    from llguidance import LLMatcher

    if spec.json_schema is not None:
        return LLMatcher.grammar_from_json_schema(json.loads(spec.json_schema),
                                                  overrides=JSON_FORMAT)
    return LLMatcher.grammar_from_lark(to_lark(spec))


def check_spec(spec: ConstraintSpec) -> None:
    """Raise ValueError if a regex, the JSON schema or the combined grammar is invalid.

    Needs no tokenizer: it runs in `generate`'s option check, before a model loads.
    """
    from llguidance import LLMatcher

    for regex in spec.regexes:
        error = LLMatcher.validate_grammar(LLMatcher.grammar_from_regex(regex))
        if error:
            raise ValueError(f"invalid regex {regex!r}: {_detail(error)} (the syntax is "
                             "Rust's: no look-around, no back-references)")
    if not spec.shaped:
        return
    try:
        grammar = compile_grammar(spec)
    except ValueError as error:
        raise ValueError(f"invalid json_schema: {error}") from None
    error = LLMatcher.validate_grammar(grammar)
    if error:
        what = "json_schema" if spec.json_schema is not None else "constraints"
        raise ValueError(f"invalid {what}: {_detail(error)}")


def _detail(message: str) -> str:
    """The informative line of an llguidance error (regex errors put it after a caret)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    detail = [line for line in lines if line.startswith("error:")]
    return detail[0][len("error:"):].strip() if detail else (lines[0] if lines else message)
