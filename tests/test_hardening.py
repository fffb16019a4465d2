"""Hardening (issue 15) on tiny models: constraints and their errors, temperatures,
re-entrant callbacks, bounded rows, damaged caches, clean exits."""

from __future__ import annotations

import json

import pytest

import lmql_nb
from lmql_nb.constraints import parse_constraints

import reference


# constraints: what no token can spell, and errors in lmql_nb's words --------------------

class _BytesTokenizer:
    """A vocabulary of "a", "b", "ab" and an end token: "c" cannot be spelled."""

    vocab_size = 4

    def llguidance_tokenizer(self):
        import llguidance

        from lmql_nb.constraints.vocabulary import SPECIAL_MARKER, Vocabulary

        tokens = [b"a", b"b", b"ab", SPECIAL_MARKER + b"<end>"]
        return llguidance.LLTokenizer(Vocabulary(tokens, [3], 3, None, lambda text: []))


def test_a_choice_no_token_can_spell_is_named_before_generation():
    from lmql_nb.constraints.matcher import Constraint

    tokenizer = _BytesTokenizer()
    spec = parse_constraints({"choices": ["ab", "ba", "abc"]})
    with pytest.raises(ValueError, match=r"choices\[2\] 'abc' cannot be produced by this "
                                         r"model: its tokens cannot spell it"):
        Constraint(spec, tokenizer, 4)
    matcher = Constraint(parse_constraints({"choices": ["ab", "ba"]}), tokenizer, 4).start()
    assert not matcher.blocked[:3].any()


@pytest.mark.parametrize("options, message", [
    ({"regex": "((a{100}){100}){100}"}, "too large for the constraint engine"),
    ({"stops_before": [f"stop{i}x" for i in range(2000)], "choices": [" a", " b"]},
     "too large for the constraint engine"),
    ({"json_schema": 200}, "json_schema is nested too deeply to compile"),
    ({"json_schema": 2000}, "json_schema is nested too deeply to compile"),
    ({"regex": "x" * 100_000 + "("}, r"invalid regex 'x+'\.\.\.\(99921 characters\)\.\.\."),
])
def test_constraint_errors_are_short_and_name_the_problem(tmp_path, options, message):
    if isinstance(options.get("json_schema"), int):  # that many levels
        schema: dict = {"type": "string"}
        for _ in range(options["json_schema"]):
            schema = {"type": "array", "items": schema}
        options = {"json_schema": schema}
    llm = lmql_nb.model(f"local:{tmp_path}")  # an empty folder: checked before loading
    with pytest.raises(ValueError, match=message) as caught:
        llm.generate_sync("Hi", max_tokens=2, **options)
    text = str(caught.value)
    assert len(text) < 400 and "fuel" not in text and "<state>" not in text


def test_a_length_bound_beyond_any_text_is_no_bound(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    huge = llm.generate_sync("Once upon", max_tokens=6, where="len(RESPONSE) < 10000000000",
                             cache=False)
    # the same as a bound the six tokens cannot reach (both keep the text valid UTF-8)
    assert huge == llm.generate_sync("Once upon", max_tokens=6, where="len(RESPONSE) < 1000",
                                     cache=False)
