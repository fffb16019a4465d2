"""A `ConstraintSpec` as an llguidance grammar (for specs that shape the text).

Everything except JSON is regular, so it becomes one lexeme (`RESPONSE`) built with
llguidance's `&` (intersection) and `~` (complement) operators on regexes:

    BODY:            every regex & the choices & the integer shape & the length bound
                     & ~(.*EXCLUDED.*) & every pattern (and: &, or: |, not: ~)
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
from typing import Any, cast

from .spec import ConstraintSpec

INT_REGEX = r" ?-?(?:0|[1-9][0-9]*)"  # int() reads it; no leading zeros to loop on
# what `not INT(X)` excludes: everything int() reads ("02", " 7\n")
INT_READABLE = r"[ \t\n]*[-+]?[0-9]+[ \t\n]*"
JSON_FORMAT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY = "/(?s:.*)/"
MAX_COUNT = 2**32 - 1
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


def lexeme(kind: str, value: Any, negated: bool = False) -> str:
    """A regular primitive (`primitives.REGULAR`) as an llguidance lexeme expression
    (`negated`: under a `not`, where `type=int` means whatever int() reads)."""
    from llguidance import regex_to_lark

    if kind == "regex":
        return f"/{regex_to_lark(value, '')}/"
    if kind == "choices":
        return f"/{_alternatives(value)}/"
    if kind == "type":
        return f"/{INT_READABLE if negated else INT_REGEX}/"
    if kind == "max_chars":
        # the regex engine counts to 2**32 - 1; a longer bound than that holds any text
        # a model can produce, so it is that bound
        return f"/(?s:.{{0,{min(value, MAX_COUNT)}}})/"
    if kind == "excludes":  # llguidance does not enforce a lexeme that is a bare complement
        return f"({ANY} & ~/(?s:.*){_alternatives(value)}(?s:.*)/)"
    if kind == "pattern":
        if value.op == "regex":
            return lexeme("regex", value.regex)
        inner = negated != (value.op == "not")
        parts = [lexeme(k, v, inner) for k, v in value.parts] or [ANY]
        if value.op == "or":
            return "(" + " | ".join(parts) + ")"
        joined = "(" + " & ".join(parts) + ")"
        return f"({ANY} & ~{joined})" if value.op == "not" else joined
    raise ValueError(f"{kind} is not a constraint on the text's form")


def to_lark(spec: ConstraintSpec) -> str:
    """The lark grammar of a shaped spec without a JSON schema."""
    body = [lexeme("regex", r) for r in spec.regexes]
    if spec.choices is not None:
        body.append(lexeme("choices", spec.choices))
    if spec.integer:
        body.append(lexeme("type", int))
    if spec.max_chars is not None:
        body.append(lexeme("max_chars", spec.max_chars))
    if spec.excludes:
        body.append(lexeme("excludes", spec.excludes))
    body += [lexeme("pattern", p) for p in spec.patterns]
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
    """The llguidance grammar (a string for `LLMatcher`) of a shaped spec.

    ValueError for a JSON schema llguidance cannot compile (or nested too deeply to
    convert).
    """
    from llguidance import LLMatcher

    if spec.json_schema is not None:
        try:
            return LLMatcher.grammar_from_json_schema(spec.json_schema, overrides=JSON_FORMAT)
        except RecursionError:
            raise ValueError("the schema is nested too deeply to compile") from None
    return LLMatcher.grammar_from_lark(to_lark(spec))


def parser_limits() -> Any:
    """llguidance's limits for every matcher: its defaults (more fuel lets thousands of
    stop strings compile, but at seconds a step), and errors without the parser's state
    (a dump of kilobytes that would bury the message)."""
    from llguidance import LLParserLimits

    return LLParserLimits(verbose_errors=False)


def check_spec(spec: ConstraintSpec) -> None:
    """Raise ValueError if a regex, the JSON schema or the combined grammar is invalid,
    or too large for the constraint engine.

    Needs no tokenizer: it runs in `generate`'s option check, before a model loads.
    """
    from llguidance import LLMatcher

    for regex in spec.regexes:
        error = LLMatcher.validate_grammar(LLMatcher.grammar_from_regex(regex),
                                           limits=parser_limits())
        if error:
            raise ValueError(f"invalid regex {shorten(regex)}: {_detail(error)} (the syntax "
                             "is Rust's: no look-around, no back-references)")
    if not spec.shaped:
        return
    what = "json_schema" if spec.json_schema is not None else "constraints"
    try:
        grammar = compile_grammar(spec)
    except ValueError as error:
        if "recursion limit" in str(error):
            raise ValueError("json_schema is nested too deeply to compile (llguidance reads "
                             "at most about 120 levels)") from None
        raise ValueError(f"invalid json_schema: {shorten(str(error), 300)}") from None
    problem = LLMatcher.validate_grammar(grammar, limits=parser_limits()) or _probe(grammar)
    if problem:
        raise ValueError(f"invalid {what}: {_detail(problem)}")


def shorten(text: str, limit: int = 80) -> str:
    """`text` quoted, with its middle left out when it is longer than `limit`."""
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}...({len(text) - 2 * half} characters)...{text[-half:]!r}"


# bytes the probe walks into a grammar: far enough for a lexer that blows up on its
# first derivatives (counted repetitions nested into millions of states)
_PROBE_BYTES = 4


def _probe(grammar: str) -> str:
    """The error llguidance meets on the first few bytes of a text `grammar` allows, over
    a vocabulary of single bytes ("" if none): limits that only show once matching
    starts fail here, before a model loads, instead of mid-generation."""
    import llguidance
    import numpy as np

    matcher = llguidance.LLMatcher(_byte_tokenizer(), grammar, log_level=0,
                                   limits=parser_limits())
    for _ in range(_PROBE_BYTES):
        if matcher.is_error():
            break
        allowed = np.flatnonzero(np.unpackbits(
            np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")[:256])
        if matcher.is_error() or not len(allowed):
            break
        matcher.consume_token(int(allowed[0]))
    error = matcher.get_error() if matcher.is_error() else ""
    # only the engine's limits matter here; a grammar without solutions is found (and
    # explained) when it is compiled for the model's tokenizer
    return error if _over_limits(error) else ""


def _over_limits(message: str) -> bool:
    return any(word in message for word in ("fuel", "too many", "limit"))


@functools.lru_cache(maxsize=1)
def _byte_tokenizer() -> Any:
    """An llguidance tokenizer whose tokens are the 256 bytes (and an end token)."""
    import llguidance

    from .vocabulary import SPECIAL_MARKER, Vocabulary

    tokens = [bytes([b]) for b in range(256)] + [SPECIAL_MARKER + b"<end>"]
    return llguidance.LLTokenizer(cast(Any, Vocabulary(tokens, [256], 256, None,
                                                       lambda text: list(text.encode()))))


# llguidance's advice names its own settings; lmql_nb's users can act on this instead
_TOO_LARGE = ("too large for the constraint engine: use fewer or shorter stop strings and "
              "choices, or simpler repetitions in regexes")


def _detail(message: str) -> str:
    """The informative line of an llguidance error (regex errors put it after a caret),
    in lmql_nb's words where llguidance's name its internals, at most 300 characters."""
    lines = [line.strip() for line in message.strip().splitlines()
             if line.strip() and not line.strip().startswith("<")]
    detail = [line for line in lines if line.startswith("error:")]
    text = detail[0][len("error:"):].strip() if detail else (lines[0] if lines else message)
    if _over_limits(text):
        return _TOO_LARGE
    return text if len(text) <= 300 else text[:300] + "..."
