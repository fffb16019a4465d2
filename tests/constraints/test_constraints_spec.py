"""Constraint options: validation before any work, grammars, stop cutting, server params."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lmql_nb
from lmql_nb.constraints import ConstraintSpec, parse_constraints
from lmql_nb.constraints.matcher import Constraint
from lmql_nb.errors import ConstraintError
from lmql_nb.backends.openai.dialect import to_server_params
from lmql_nb.constraints.stops import cut_stop, new_stop, stop_cut
from lmql_nb.core.options import parse_generate_options
from lmql_nb.core.results import TokenInfo
from lmql_nb.backends.transformers.tokenizer import HFTokenizer

from installed import dev_package

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.mark.parametrize("options, error, message", [
    ({"regex": "(?<=a)b"}, ValueError, r"invalid regex '\(\?<=a\)b': look-around"),
    ({"regex": "[a-"}, ValueError, "unclosed character class"),
    ({"regex": 5}, TypeError, "regex must be a str"),
    ({"json_schema": {"type": "foo"}}, ValueError, "invalid json_schema"),
    ({"json_schema": {"type": "object", "properties": {"a": {"$ref": "#/nope"}}}}, ValueError,
     "invalid json_schema"),
    ({"json_schema": '{"type": "object"}'}, TypeError, "json_schema must be a dict"),
    ({"json_schema": {"type": "object", "default": {1, 2}}}, TypeError, "not JSON-serialisable"),
    ({"choices": []}, ValueError, "choices must not be empty"),
    ({"choices": "yes"}, TypeError, "choices must be a list"),
    ({"choices": ["a", 1]}, TypeError, r"choices\[1\] must be a str"),
    ({"where": "INT(RESPONSE) or len(TOKENS(RESPONSE)) < 3"}, ValueError, "'or' cannot combine"),
    ({"where": "INT(RESPONSE"}, ValueError, "malformed where expression"),
    ({"stops_at": [""]}, ValueError, "empty"),
    ({"stops_before": [3]}, TypeError, "must be a str"),
    ({"type": float}, ValueError, "type=int is"),
    ({"stops_at": ["x"], "stops_before": ["x"]}, ValueError,
     "both as stops_at and stops_before"),
    ({"json_schema": PERSON, "regex": "a"}, ValueError,
     "json_schema cannot be combined with regex"),
    ({"choices": ["a", "b"], "where": 'RESPONSE in ["c"]'}, ValueError, "intersection is empty"),
])
def test_bad_constraints_fail_before_the_model_loads(tiny_gpt2_path, monkeypatch, options,
                                                     error, message):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    monkeypatch.setattr(llm.backend, "load", lambda: pytest.fail("the model was loaded"))
    with pytest.raises(error, match=message):
        llm.generate_sync("Hi", max_tokens=3, **options)


def test_constraints_with_no_solution_fail_before_generation(tiny_gpt2_path, monkeypatch):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    llm.generate_sync("Hi", max_tokens=1, cache=False)  # loaded
    from lmql_nb.backends.engine import generation

    monkeypatch.setattr(generation, "run_generate", lambda *a: pytest.fail("generation ran"))
    with pytest.raises(ValueError, match="no text satisfies"):
        llm.generate_sync("Hi", max_tokens=3, choices=["abc"], regex="[0-9]+", cache=False)


def test_a_pydantic_model_is_a_schema():
    pydantic = dev_package("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int

    spec = parse_constraints({"json_schema": Person})
    assert json.loads(spec.json_schema) == Person.model_json_schema()
    assert list(json.loads(spec.json_schema)["properties"]) == ["name", "age"]  # order kept


def test_constraints_are_part_of_the_cache_key():
    plain = parse_generate_options(5).cache_key()
    keys = {plain, parse_generate_options(5, regex="[0-9]+").cache_key(),
            parse_generate_options(5, regex="[0-9]*").cache_key(),
            parse_generate_options(5, stops_at=["."]).cache_key(),
            parse_generate_options(5, stops_before=["."]).cache_key(),
            parse_generate_options(5, json_schema=PERSON).cache_key()}
    assert len(keys) == 6
    again = parse_generate_options(5, where='REGEX(RESPONSE, "[0-9]+")').cache_key()
    assert again == parse_generate_options(5, regex="[0-9]+").cache_key()
    hash(again)


# stop strings on text


def _tokens(*texts: str) -> list[TokenInfo]:
    return [TokenInfo(token_id=i, text=t, logprob=-1.0) for i, t in enumerate(texts)]


def test_stops_at_keeps_and_stops_before_drops():
    tokens = _tokens("The", " cap", "ital.", "\nNext")
    at = cut_stop(tokens, ConstraintSpec(stops_at=(".",)))
    assert "".join(t.text for t in at) == "The capital."
    before = cut_stop(tokens, ConstraintSpec(stops_before=(".",)))
    assert "".join(t.text for t in before) == "The capital"
    assert [t.token_id for t in before] == [0, 1, 2]  # the straddling token is trimmed
    spread = cut_stop(_tokens("a", "b", "\n", "\n", "c"), ConstraintSpec(stops_before=("\n\n",)))
    assert [t.text for t in spread] == ["a", "b"]  # tokens wholly inside the stop are dropped
    assert cut_stop(tokens, ConstraintSpec(stops_at=("zz",))) == tuple(tokens)


def test_the_first_stop_to_end_decides_and_the_longest_at_a_tie():
    spec = ConstraintSpec(stops_at=("b",), stops_before=("xab", "cd"))
    assert stop_cut("..cd..b", spec) == 2
    assert stop_cut("..xab..", spec) == 2  # "xab" and "b" end together: "xab" is longer
    assert stop_cut("..ab..", spec) == 4
    assert stop_cut("....", spec) is None


def test_new_stop_looks_only_at_what_the_last_token_may_complete():
    spec = ConstraintSpec(stops_at=("\n\n",))
    assert new_stop("ab\n\n", 1, spec)
    assert new_stop("ab\n\ncd", 3, spec)
    assert not new_stop("ab\ncd", 2, spec)
    assert not new_stop("ab\n\n", 0, spec)  # a token that added no text completes nothing


# grammars, checked with llguidance on a real (tiny) tokenizer


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_gpt2_path):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tiny_gpt2_path))
    return HFTokenizer(hf, [hf.eos_token_id])


def _accepts(tokenizer: HFTokenizer, spec: ConstraintSpec, text: str) -> bool:
    """Whether the constraint lets `text` be generated token by token and end there."""
    matcher = Constraint(spec, tokenizer, tokenizer.vocab_size).start()
    for token_id in tokenizer.encode(text):
        if matcher.forced_end or bool(matcher.blocked[token_id]):
            return False
        try:
            matcher.advance(token_id)
        except ConstraintError:
            return False
    return matcher.accepting


@pytest.mark.parametrize("options, accepted, rejected", [
    ({"choices": ["a.b", "(x)|y"]}, ["a.b", "(x)|y"], ["axb", "x", "y", "a.b."]),
    ({"regex": "[0-9]{2}-[a-z]+"}, ["12-ab"], ["1-ab", "12-", "12-ab1"]),
    ({"type": int}, ["42", "-7", " 0", "100"], ["007", "4.2", "", "4 2"]),
    ({"where": "len(RESPONSE) < 4"}, ["", "abc"], ["abcd"]),
    ({"regex": "[a-z ]+", "stops_before": ["\n"]}, ["ab c", "ab\n", "ab\nANY thing"],
     ["a1\n", "AB"]),
    ({"regex": "[a-z]+!", "stops_at": ["!"]}, ["abc!", "abc!more"], ["abc", "!x"]),
    ({"choices": ["yes", "no", "maybe"], "where": "len(RESPONSE) < 4"}, ["yes", "no"],
     ["maybe"]),
])
def test_grammars_accept_exactly_what_the_constraints_allow(tiny_tokenizer, options, accepted,
                                                          rejected):
    spec = parse_constraints(options)
    for text in accepted:
        assert _accepts(tiny_tokenizer, spec, text), text
    for text in rejected:
        assert not _accepts(tiny_tokenizer, spec, text), text


@given(st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
               min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_choices_are_literal_whatever_their_characters(tiny_tokenizer, choice):
    spec = parse_constraints({"choices": [choice]})
    assert _accepts(tiny_tokenizer, spec, choice)
    assert not _accepts(tiny_tokenizer, spec, choice + "x")


def test_json_whitespace_is_bounded(tiny_tokenizer):
    spec = parse_constraints({"json_schema": PERSON})
    assert _accepts(tiny_tokenizer, spec, '{"name": "Ada", "age": 36}')
    assert not _accepts(tiny_tokenizer, spec, '{"name": "Ada",  "age": 36}')
    assert not _accepts(tiny_tokenizer, spec, '{\n"name": "Ada", "age": 36}')
    assert not _accepts(tiny_tokenizer, spec, '{"age": 36, "name": "Ada"}')  # schema order


# server parameters


def _spec(**options) -> ConstraintSpec:
    return parse_constraints(options)


def test_vllm_params():
    assert to_server_params(_spec(regex="[0-9]+")) == {
        "extra_body": {"structured_outputs": {"regex": "[0-9]+"}}}
    assert to_server_params(_spec(choices=["a", "b"]), "vllm") == {
        "extra_body": {"structured_outputs": {"choice": ["a", "b"]}}}
    assert to_server_params(_spec(json_schema=PERSON)) == {
        "extra_body": {"structured_outputs": {"json": PERSON}}}
    int_regex = to_server_params(_spec(type=int))["extra_body"]["structured_outputs"]["regex"]
    assert re.fullmatch(int_regex, "-42") and not re.fullmatch(int_regex, "4.2")
    assert to_server_params(_spec(stops_before=["\n"], regex="[a-z]+")) == {
        "stop": ["\n"], "extra_body": {"structured_outputs": {"regex": "[a-z]+"}}}
    assert to_server_params(_spec(where='STOPS_AT(RESPONSE, ".")')) == {
        "stop": ["."], "extra_body": {"include_stop_str_in_output": True}}
    chars = to_server_params(_spec(where="len(RESPONSE) < 4"))["extra_body"]
    assert re.fullmatch(chars["structured_outputs"]["regex"], "a\nc")
    assert not re.fullmatch(chars["structured_outputs"]["regex"], "abcd")


def test_openai_params():
    assert to_server_params(_spec(stops_before=[".", "\n"]), "openai") == {"stop": [".", "\n"]}
    params = to_server_params(_spec(json_schema=PERSON), "openai")
    assert params == {"response_format": {"type": "json_schema", "json_schema": {
        "name": "response", "schema": PERSON, "strict": True}}}


@pytest.mark.parametrize("flavour, options, message", [
    ("vllm", {"stops_at": ["a"], "stops_before": ["b"]}, "not both"),
    ("vllm", {"regex": "[a-z]+", "choices": ["ab"]}, "choices and regex '\\[a-z\\]\\+' together"),
    ("vllm", {"type": int, "where": "len(RESPONSE) < 3"}, "type=int and len\\(RESPONSE\\)"),
    ("vllm", {"where": 'not "x" in RESPONSE'}, "vLLM server cannot enforce not ... in RESPONSE"),
    ("openai", {"regex": "[0-9]"}, "cannot enforce regex"),
    ("openai", {"choices": ["a"]}, "cannot enforce choices"),
    ("openai", {"type": int}, "cannot enforce type=int"),
    ("openai", {"stops_at": ["."]}, "cannot enforce stops_at"),
    ("openai", {"stops_before": list("abcde")}, "at most 4 stop strings"),
    ("azure", {"regex": "a"}, "unknown server dialect"),
])
def test_what_a_server_cannot_enforce_is_an_error(flavour, options, message):
    with pytest.raises(ValueError, match=message):
        to_server_params(_spec(**options), flavour)


def test_every_constraint_field_travels_or_is_refused():
    import dataclasses

    from lmql_nb.backends.openai import dialect

    fields = {f.name for f in dataclasses.fields(ConstraintSpec)}
    for table in dialect._FIELDS.values():
        assert set(table) == fields
    # a field nobody mapped is refused, not dropped from the request
    Spec = dataclasses.make_dataclass("Spec", [("new_keyword", bool, False)],
                                      bases=(ConstraintSpec,), frozen=True)
    with pytest.raises(ValueError, match="'new_keyword' has no mapping"):
        to_server_params(Spec(new_keyword=True), "vllm")


def test_validation_needs_neither_torch_nor_a_model():
    import subprocess
    import sys

    code = ("import sys, lmql_nb; before = 'llguidance' in sys.modules; "
            "from lmql_nb.core.options import parse_generate_options as p; "
            "p(3, regex='[0-9]+', where='INT(RESPONSE)'); "
            "print(before, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
