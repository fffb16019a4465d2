"""LMQL's documented examples on the embedded Gemma: holes as `generate` gives them,
distributions as `score` gives them, and answers a real model makes sensible."""

from __future__ import annotations

import pytest

import lmql_nb as lmql

from test_query import check_trace

pytestmark = pytest.mark.gemma


@pytest.fixture
def llm(gemma):
    lmql.set_default_model(gemma)
    yield gemma
    lmql.api._default = None


def test_overview_query_with_distribution(llm):
    result = lmql.run_sync('''
argmax
    review = """We had a great stay. Hiking in the mountains
                was fabulous and the food is really good."""
    """Review: {review}
    Q: What is the underlying sentiment of this review and why?
    A:[ANALYSIS]""" where not "\\n" in ANALYSIS and len(TOKENS(ANALYSIS)) < 9
    "\\nBased on this, the overall sentiment of the message can be considered to be[CLS]"
distribution
    CLS in [" positive", " neutral", " negative"]
''')
    assert result.variables["CLS"] == " positive"
    assert "\n" not in result.variables["ANALYSIS"]
    check_trace(llm, result.trace, {"ANALYSIS": {
        "where": 'not "\\n" in RESPONSE and len(TOKENS(RESPONSE)) < 9'}})


def test_chain_of_thought_function(llm):
    @lmql.query
    def capital(country):
        '''lmql
        "Q: What is the capital of {country}?\n"
        "A: The capital of {country} is[CITY]" where STOPS_BEFORE(CITY, ".") and len(TOKENS(CITY)) < 6
        return CITY.strip()
        '''

    assert capital("France") == "Paris"
    assert llm.generate_sync("Q: What is the capital of France?\nA: The capital of France is",
                             max_tokens=5, stops_before=".", cache=False).strip() == "Paris"


def test_packing_list_with_cross_variable_choice(llm):
    result = lmql.run_sync('''
"A list of things to take to the beach:\\n"
things = []
for i in range(3):
    "-[THING]" where STOPS_AT(THING, "\\n") and len(TOKENS(THING)) < 8
    things.append(THING.strip())
"The most important one is:[BEST]" where BEST in [" " + t for t in things]
''')
    things = [s.text.strip() for s in result.trace.holes() if s.name == "THING"]
    assert result.variables["BEST"].strip() in things
    check_trace(llm, result.trace, {
        "THING": {"stops_at": "\n", "max_tokens": 7},
        "BEST": {"choices": list(dict.fromkeys(" " + t for t in things))}})
