"""Constrained generation on the embedded Gemma 3 270M (262k vocabulary).

The first constrained call pays llguidance's tokenizer set-up once (seconds); each test
then generates only a few tokens.
"""

from __future__ import annotations

import json
import re

import pytest

from installed import dev_package

pytestmark = pytest.mark.gemma

PERSON = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 12},
                         "age": {"type": "integer", "minimum": 0, "maximum": 150}},
          "required": ["name", "age"], "additionalProperties": False}
FEW_SHOT = ('Ada is 36 years old. As JSON: {"name": "Ada", "age": 36}\n'
            "Bob is 41 years old. As JSON:")
CAPITAL = "The capital of France is"


def _details(gemma, prompt, **options):
    return gemma.generate_sync(prompt, cache=False, return_details=True, **options)


def test_choices(gemma):
    generation = _details(gemma, "Q: Is Paris in France? Answer yes or no.\nA:",
                          choices=[" yes", " no"], max_tokens=4, top_logprobs=5)
    assert generation.text in (" yes", " no")
    assert generation.finish_reason == "stop"
    # the model's favourite (" Yes") is not a choice: it is listed, and blocked
    first = generation.tokens[0]
    assert any(a.blocked for a in first.top)
    assert not any(a.blocked for a in first.top if a.token_id == first.token_id)


def test_regex(gemma):
    generation = _details(gemma, "The Berlin wall fell in the year", regex=" [0-9]{4}",
                          max_tokens=6)
    assert re.fullmatch(" [0-9]{4}", generation.text)
    assert generation.finish_reason == "stop"  # complete: ended without end-of-sequence


def test_int_blocks_the_words_the_model_prefers(gemma):
    generation = _details(gemma, "Two plus two equals", type=int, max_tokens=3,
                          top_logprobs=5)
    int(generation.text)
    assert re.fullmatch(" ?-?[0-9]+", generation.text)
    words = [a for a in generation.tokens[0].top if a.text.strip().isalpha()]
    assert words and all(a.blocked for a in words)  # " four", " three", ...
    # the logprob reported is the model's own: an unconstrained run's top token is
    # " four", and our first token is less likely than it
    assert generation.tokens[0].rank > 1
    assert generation.tokens[0].logprob < generation.tokens[0].top[0].logprob


def test_json_schema(gemma):
    jsonschema = dev_package("jsonschema")
    generation = _details(gemma, FEW_SHOT, json_schema=PERSON, max_tokens=20)
    assert generation.finish_reason == "stop"
    value = json.loads(generation.text)
    jsonschema.validate(value, PERSON)
    assert value == {"name": "Bob", "age": 41}


def test_stops_at_keeps_and_stops_before_drops(gemma):
    free = gemma.generate_sync(CAPITAL, max_tokens=8, cache=False)
    assert free.startswith(" the capital of")  # what the tests below rely on
    at = _details(gemma, CAPITAL, stops_at=[" of"], max_tokens=8)
    before = _details(gemma, CAPITAL, stops_before=[" of"], max_tokens=8)
    assert at.text == free[:free.index(" of") + 3] == " the capital of"
    assert before.text == " the capital"
    assert at.finish_reason == before.finish_reason == "stop"
    assert before.text == "".join(t.text for t in before.tokens)


def test_where_expressions(gemma):
    stopped = gemma.generate_sync(
        CAPITAL, cache=False, where='STOPS_BEFORE(RESPONSE, " of") and len(TOKENS(RESPONSE)) < 8')
    assert stopped == " the capital"
    colour = gemma.generate_sync("My favourite colour is", cache=False,
                                 where='RESPONSE in [" red", " green", " blue"]')
    assert colour in (" red", " green", " blue")
    year = _details(gemma, "The Berlin wall fell in the year",
                    where=r'REGEX(RESPONSE, " [0-9]+") and len(RESPONSE) < 6')
    assert re.fullmatch(" [0-9]{1,4}", year.text) and year.finish_reason == "stop"


def test_constrained_sampling(gemma):
    generations = gemma.generate_sync("The Berlin wall fell in the year", decoder="sample",
                                      n=4, seed=0, temperature=1.5, regex=" [0-9]{4}",
                                      max_tokens=6, cache=False)
    assert len(generations) == 4
    assert all(re.fullmatch(" [0-9]{4}", text) for text in generations), generations
    assert len(set(generations)) > 1  # sampled, not argmax four times


def test_constrained_beam_search(gemma):
    generations = _details(gemma, "The Berlin wall fell in the year", decoder="beam", n=3,
                           regex=" 19[0-9]{2}", max_tokens=6)
    assert 1 <= len(generations) <= 3
    for generation in generations:
        assert re.fullmatch(" 19[0-9]{2}", generation.text)
        assert generation.finish_reason == "stop"


def test_bad_constraints_are_errors_before_generation(gemma):
    for options, error in (({"regex": "(a"}, ValueError), ({"choices": []}, ValueError),
                           ({"json_schema": {"type": "nope"}}, ValueError),
                           ({"where": "INT(RESPONSE) or"}, ValueError),
                           ({"json_schema": [1]}, TypeError)):
        with pytest.raises(error):
            gemma.generate_sync(CAPITAL, max_tokens=2, cache=False, **options)
