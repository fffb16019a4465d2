"""The keyword registry: one definition reaches every layer that speaks constraints.

`starts_with` (`STARTS_WITH(X, "s")`, `--starts-with`) is one `Keyword` in
lmql_nb/constraints/keywords.py; these tests show it working in `generate(...)`, `where`,
query programs, the `%%lmql_generate` flags, the OpenAI dialects and `lmql_nb serve`. The
expected outputs come from the built-in `regex=` keyword spelled out by hand. A keyword
registered by a user (`ends_with` below) reaches the same places without editing any.
"""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.backends.openai.dialect import to_server_params
from lmql_nb.constraints.keywords import (Flag, Keyword, Pattern, WhereFunction,
                                          register_keyword, regex_escape, unregister_keyword)
from lmql_nb.core.options import parse_generate_options
from lmql_nb.core.text import check_text
from lmql_nb.notebook.magics.arguments import build_parser, generate_options, model_kwargs

PROMPT = "Once upon"
BY_HAND = r" river[\s\S]*"


@pytest.fixture(scope="module")
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


@pytest.fixture(scope="module")
def by_hand(llm):
    text = llm.generate_sync(PROMPT, max_tokens=6, regex=BY_HAND, cache=False)
    free = llm.generate_sync(PROMPT, max_tokens=6, cache=False)
    assert text.startswith(" river") and not free.startswith(" river")
    return text


def test_starts_with_as_a_keyword_and_in_where(llm, by_hand):
    assert llm.generate_sync(PROMPT, max_tokens=6, starts_with=" river", cache=False) == by_hand
    assert llm.generate_sync(PROMPT, max_tokens=6, cache=False,
                             where='STARTS_WITH(RESPONSE, " river")') == by_hand


def test_starts_with_in_a_query_program(llm, by_hand):
    @lmql_nb.query(model=llm)
    def story(start):
        '''lmql
        "Once upon[TEXT]" where STARTS_WITH(TEXT, start) and len(TOKENS(TEXT)) < 7
        return TEXT
        '''

    assert story(" river") == by_hand


def test_starts_with_as_a_magic_flag(llm, by_hand):
    options = generate_options()
    namespace = build_parser("%%lmql_generate", options).parse_args(
        ["--starts-with", " river", "--max-tokens", "6"])
    kwargs = model_kwargs(options, namespace)
    assert kwargs == {"starts_with": " river", "max_tokens": 6}
    assert llm.generate_sync(PROMPT, cache=False, **kwargs) == by_hand


def test_starts_with_in_the_server_dialects():
    spec = parse_generate_options(4, starts_with="a.b", where="len(RESPONSE) < 6").constraint
    assert spec.max_chars == 5 and spec.patterns[0].regex == r"a\.b[\s\S]*"
    assert to_server_params(parse_generate_options(4, starts_with="x").constraint) == {
        "extra_body": {"structured_outputs": {"regex": r"x[\s\S]*"}}}
    with pytest.raises(ValueError, match=r"OpenAI's API cannot enforce STARTS_WITH"):
        to_server_params(parse_generate_options(4, starts_with="x").constraint, "openai")
    with pytest.raises(TypeError, match="starts_with must be a non-empty str"):
        parse_generate_options(4, starts_with=3)


def test_starts_with_through_lmql_nb_serve(gpt2_server, llm):
    remote = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                           api_key=gpt2_server.api_key, timeout=30)
    here = llm.generate_sync(PROMPT, max_tokens=6, starts_with=" river", cache=False)
    there = remote.generate_sync(PROMPT, max_tokens=6, starts_with=" river", cache=False)
    assert there == here and there.startswith(" river")


def test_min_tokens_through_lmql_nb_serve(gpt2_server, llm):
    remote = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                           api_key=gpt2_server.api_key, timeout=30)
    where = 'STOPS_AT(RESPONSE, "ow") and len(TOKENS(RESPONSE)) > 9'
    here = llm.generate_sync(PROMPT, max_tokens=20, where=where, cache=False)
    there = remote.generate_sync(PROMPT, max_tokens=20, where=where, cache=False)
    assert there == here
    with pytest.raises(ValueError, match=r"OpenAI's API cannot enforce .*a lower token bound"):
        to_server_params(parse_generate_options(20, where=where).constraint, "openai")


def _ends_with(value):
    if not isinstance(value, str) or not value:
        raise TypeError(f"ends_with must be a non-empty str, got {value!r}")
    text = check_text(value, "ends_with")
    return [("pattern", Pattern(f"ENDS_WITH(RESPONSE, {text!r})",
                                regex=r"[\s\S]*" + regex_escape(text)))]


@pytest.fixture
def ends_with():
    register_keyword(Keyword("ends_with", _ends_with, "ends with this text",
                             where=WhereFunction("ENDS_WITH"),
                             flag=Flag("--ends-with", "TEXT", "the completion ends with this")))
    yield
    unregister_keyword("ends_with")


def test_a_keyword_registered_later_reaches_every_layer(ends_with, llm):
    text = llm.generate_sync(PROMPT, max_tokens=8, ends_with="ow", cache=False)
    assert text == llm.generate_sync(PROMPT, max_tokens=8, regex=r"[\s\S]*ow", cache=False)
    assert text.endswith("ow")
    assert llm.generate_sync(PROMPT, max_tokens=8, where='ENDS_WITH(RESPONSE, "ow")',
                             cache=False) == text
    options = generate_options()
    kwargs = model_kwargs(options, build_parser("x", options).parse_args(["--ends-with", "ow"]))
    assert kwargs == {"ends_with": "ow"}
    assert to_server_params(parse_generate_options(8, **kwargs).constraint) == {
        "extra_body": {"structured_outputs": {"regex": r"[\s\S]*ow"}}}


def test_unregistered_it_is_an_unknown_option_and_function():
    with pytest.raises(TypeError, match="unknown option 'ends_with'"):
        parse_generate_options(4, ends_with="x")
    with pytest.raises(ValueError, match="unsupported function"):
        parse_generate_options(4, where='ENDS_WITH(RESPONSE, "x")')


def test_names_flags_and_functions_are_not_taken_twice():
    with pytest.raises(ValueError, match="its where function is registered already"):
        register_keyword(Keyword("other", lambda v: [], "x", where=WhereFunction("STOPS_AT")))
    with pytest.raises(ValueError, match="its flag is registered already"):
        register_keyword(Keyword("other", lambda v: [], "x", flag=Flag("--regex", "RE", "x")))


def test_where_need_not_come_last():
    register_keyword(Keyword("after_where", lambda v: [("stops_at", (v,))], "a late keyword"))
    try:
        spec = parse_generate_options(9, where='STOPS_AT(RESPONSE, ".")', after_where="!")
        assert spec.constraint.stops_at == (".", "!")
    finally:
        unregister_keyword("after_where")


def test_stops_at_takes_a_list_in_where():
    spec = parse_generate_options(9, where='STOPS_AT(RESPONSE, [".", "!"])').constraint
    assert spec.stops_at == (".", "!")


def test_min_tokens_with_a_stop_streams_what_it_returns(gpt2_server, llm):
    """vLLM's `min_tokens` on `lmql_nb serve`: stop strings before the bound are not
    stops, in a stream as in one response (the stream holds text back the same way)."""
    import openai

    here = llm.generate_sync(PROMPT, max_tokens=20, cache=False,
                             where='STOPS_BEFORE(RESPONSE, "ow") and len(TOKENS(RESPONSE)) > 9')
    free = llm.generate_sync(PROMPT, max_tokens=20, cache=False, stops_before=["ow"])
    assert len(free) < len(here)  # without the bound it stops earlier
    with openai.OpenAI(api_key=gpt2_server.api_key, base_url=gpt2_server.base_url,
                       max_retries=0, timeout=60) as client:
        body = dict(model="tiny-gpt2", prompt=PROMPT, max_tokens=20, temperature=0,
                    stop=["ow"], extra_body={"min_tokens": 10})
        whole = client.completions.create(**body).choices[0].text
        streamed = "".join(chunk.choices[0].text for chunk in
                           client.completions.create(stream=True, **body) if chunk.choices)
    assert whole == streamed == here
