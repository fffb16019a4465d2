"""A constraint keyword declared in a test: registered, it works like the built-in ones.

`starts_with` is not part of lmql_nb: it lowers to a regex clause, so the grammar, the
combination with other keywords and `where`, and the server dialects need nothing new.
Its expected outputs come from the built-in `regex=` keyword spelled out by hand.
"""

from __future__ import annotations

import re

import pytest

import lmql_nb
from lmql_nb.backends.openai.dialect import to_server_params
from lmql_nb.constraints.keywords import Keyword, register_keyword, unregister_keyword
from lmql_nb.core.options import parse_generate_options
from lmql_nb.core.text import check_text


def _starts_with(value):
    if not isinstance(value, str) or not value:
        raise TypeError(f"starts_with must be a non-empty str, got {value!r}")
    return [("regex", re.escape(check_text(value, "starts_with")) + r"[\s\S]*")]


@pytest.fixture
def starts_with():
    register_keyword(Keyword("starts_with", _starts_with, "begins with this text"))
    yield
    unregister_keyword("starts_with")


def test_a_registered_keyword_constrains_generation(starts_with, tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    free = llm.generate_sync("Once upon", max_tokens=6, cache=False)
    assert not free.startswith(" river")
    text = llm.generate_sync("Once upon", max_tokens=6, starts_with=" river", cache=False)
    by_hand = llm.generate_sync("Once upon", max_tokens=6, regex=r" river[\s\S]*", cache=False)
    assert text == by_hand and text.startswith(" river")


def test_it_combines_and_travels_like_the_built_in_keywords(starts_with):
    spec = parse_generate_options(9, starts_with="a.b", where="len(RESPONSE) < 6").constraint
    assert spec.regexes == (r"a\.b[\s\S]*",) and spec.max_chars == 5
    assert to_server_params(parse_generate_options(4, starts_with="x").constraint) == {
        "extra_body": {"structured_outputs": {"regex": r"x[\s\S]*"}}}
    with pytest.raises(TypeError, match="starts_with must be a non-empty str"):
        parse_generate_options(4, starts_with=3)


def test_unregistered_it_is_an_unknown_option():
    with pytest.raises(TypeError, match="unknown option 'starts_with'"):
        parse_generate_options(4, starts_with="x")


def test_where_need_not_come_last():
    register_keyword(Keyword("after_where", lambda v: [("stops_at", (v,))], "a late keyword"))
    try:
        spec = parse_generate_options(9, where='STOPS_AT(RESPONSE, ".")', after_where="!")
        assert spec.constraint.stops_at == (".", "!")
    finally:
        unregister_keyword("after_where")
