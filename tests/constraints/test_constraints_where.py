"""The `where` parser: LMQL's constraint expressions, parsed and never evaluated."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmql_nb.constraints import parse_constraints
from lmql_nb.constraints.where import parse_where


@pytest.mark.parametrize("source, expected", [
    ('STOPS_AT(RESPONSE, "\\n")', [("stops_at", ("\n",))]),
    ("STOPS_BEFORE(RESPONSE, '.')", [("stops_before", (".",))]),
    ("INT(RESPONSE)", [("type", int)]),
    ('REGEX(RESPONSE, r"[0-9]+\\.")', [("regex", "[0-9]+\\.")]),
    ('RESPONSE in ["a", "b", "a"]', [("choices", ("a", "b"))]),
    ("RESPONSE in ('x',)", [("choices", ("x",))]),
    ("len(TOKENS(RESPONSE)) < 10", [("max_tokens", 9)]),
    ("len(TOKENS(RESPONSE)) <= 10", [("max_tokens", 10)]),
    ("len(RESPONSE) < 20", [("max_chars", 19)]),
    ("20 > len(RESPONSE)", [("max_chars", 19)]),
    ("20 >= len(TOKENS(RESPONSE))", [("max_tokens", 20)]),
    ('INT(RESPONSE) and (len(RESPONSE) < 4 and STOPS_AT(RESPONSE, "x"))',
     [("type", int), ("max_chars", 3), ("stops_at", ("x",))]),
    ("  INT(RESPONSE)\n", [("type", int)]),
    ('RESPONSE in ["a", "b"] or RESPONSE in ("b", "c")', [("choices", ("a", "b", "c"))]),
    ('STOPS_AT(RESPONSE, ".") or stops_at(RESPONSE, "!")',
     [("stops_at", (".",)), ("stops_at", ("!",))]),
    ('not "\\n" in RESPONSE and "ab" not in RESPONSE',
     [("excludes", ("\n",)), ("excludes", ("ab",))]),
])
def test_supported_clauses(source, expected):
    assert parse_where(source) == expected


@pytest.mark.parametrize("source, named", [
    ('INT(RESPONSE) or len(TOKENS(RESPONSE)) < 3', "'or' cannot combine len(TOKENS"),
    ('not STOPS_AT(RESPONSE, "x")', "'not' cannot combine STOPS_AT"),
    ("FOO(RESPONSE)", "'FOO(RESPONSE)'"),
    ("INT(ANSWER)", "'ANSWER'"),
    ("len(RESPONSE) < n", "'n'"),
    ("len(RESPONSE) < 1.5", "'1.5'"),
    ("len(RESPONSE) < 0", "no text is that short"),
    ("1 < len(RESPONSE) < 3", "chained"),
    ('RESPONSE < "a"', "'RESPONSE < \"a\"'"),
    ("RESPONSE in []", "empty"),
    ("RESPONSE in names", "literal list"),
    ("RESPONSE in [1, 2]", "'1'"),
    ('STOPS_AT(RESPONSE, "")', "is empty"),
    ("STOPS_AT(RESPONSE)", "takes 2 argument"),
    ('REGEX(RESPONSE, pattern)', "'pattern'"),
    ("__import__('os').system('echo pwned')", "unsupported function"),
    ("RESPONSE", "not a constraint"),
    ("INT(RESPONSE) and", "malformed"),
    ("lambda: 1", "not a constraint"),
    ("INT(RESPONSE)\x00", "malformed"),
])
def test_unsupported_parts_are_named(source, named):
    with pytest.raises(ValueError) as error:
        parse_where(source)
    assert named in str(error.value)


def test_where_is_never_evaluated(monkeypatch):
    called = []
    monkeypatch.setattr("builtins.eval", lambda *a, **k: called.append(a))
    with pytest.raises(ValueError):
        parse_where("print('side effect') and INT(RESPONSE)")
    assert not called


def test_where_must_be_a_string():
    with pytest.raises(TypeError, match="where must be a str"):
        parse_where(["INT(RESPONSE)"])


# property-based: any conjunction of supported clauses parses to exactly its clauses

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_clause = st.one_of(
    _text.map(lambda s: (f"STOPS_AT(RESPONSE, {s!r})", ("stops_at", (s,)))),
    _text.map(lambda s: (f"STOPS_BEFORE(RESPONSE, {s!r})", ("stops_before", (s,)))),
    st.just(("INT(RESPONSE)", ("type", int))),
    _text.map(lambda s: (f"REGEX(RESPONSE, {s!r})", ("regex", s))),
    st.lists(_text, min_size=1, max_size=4).map(
        lambda xs: (f"RESPONSE in {xs!r}", ("choices", tuple(dict.fromkeys(xs))))),
    st.integers(1, 10**6).map(lambda n: (f"len(TOKENS(RESPONSE)) < {n}", ("max_tokens", n - 1))),
    st.integers(0, 10**6).map(lambda n: (f"len(RESPONSE) <= {n}", ("max_chars", n))),
)


@given(st.lists(_clause, min_size=1, max_size=6), st.booleans())
@settings(max_examples=200, deadline=None)
def test_any_conjunction_parses_to_its_clauses(clauses, parenthesise):
    parts = [f"({source})" if parenthesise else source for source, _ in clauses]
    assert parse_where(" and ".join(parts)) == [clause for _, clause in clauses]


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_is_parsed_or_rejected_clearly(source):
    try:
        parse_where(source)
    except ValueError as error:
        assert "where" in str(error)


def test_where_merges_with_keywords():
    spec = parse_constraints({"stops_at": ["\n"], "choices": ["a", "b", "c"],
                              "where": 'STOPS_AT(RESPONSE, ".") and RESPONSE in ["c", "b", "z"] '
                                       "and len(RESPONSE) < 9 and len(RESPONSE) <= 5"})
    assert spec.stops_at == ("\n", ".")
    assert spec.choices == ("b", "c")  # intersection, in the keyword's order
    assert spec.max_chars == 5


def test_where_token_bound_becomes_max_tokens():
    from lmql_nb.core.options import parse_generate_options

    assert parse_generate_options(20, where="len(TOKENS(RESPONSE)) < 8").max_tokens == 7
    assert parse_generate_options(3, where="len(TOKENS(RESPONSE)) < 8").max_tokens == 3
    options = parse_generate_options(None, where="len(TOKENS(RESPONSE)) < 8")
    assert options.max_tokens == 7 and options.constraint is None  # nothing else to enforce
