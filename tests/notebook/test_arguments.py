"""The magics' option table: one place, turned into argparse parsers."""


import pytest

from lmql_nb.errors import MagicUsageError
from lmql_nb.notebook.magics.arguments import (GENERATE_OPTIONS, SCORE_OPTIONS, Option,
                                        build_parser, model_kwargs)
from lmql_nb.core.options import generate_keywords


def test_every_option_passed_to_generate_is_a_generate_option():
    passed = {o.dest for o in GENERATE_OPTIONS if o.to_model}
    assert passed <= generate_keywords()
    assert {"max_tokens", "decoder", "n", "temperature", "top_k", "stops_at", "regex",
            "choices", "json_schema", "where"} <= passed


def test_only_given_options_reach_the_model():
    parser = build_parser("%%lmql_generate", GENERATE_OPTIONS)
    args = parser.parse_args(["--max-tokens", "7", "--decoder", "sample", "-n", "2",
                              "--temperature", "0.5", "--top-k", "3", "-o", "out", "-m", "x"])
    assert model_kwargs(GENERATE_OPTIONS, args) == {
        "max_tokens": 7, "decoder": "sample", "n": 2, "temperature": 0.5, "top_k": 3}
    assert (args.out, args.model, args.format) == ("out", "x", None)


def test_a_new_option_is_one_line():
    options = GENERATE_OPTIONS + (
        Option(("--stops-at-any",), "stops_at_any", "a future option", repeatable=True),
    )
    parser = build_parser("%%lmql_generate", options)
    args = parser.parse_args(["--stops-at-any", ".", "--regex", "[0-9]+", "--stops-at-any", "\n"])
    assert model_kwargs(options, args) == {"stops_at_any": [".", "\n"], "regex": "[0-9]+"}
    assert model_kwargs(options, parser.parse_args([])) == {}


@pytest.mark.parametrize("argv, needles", [
    (["--max-tokens", "-1"], ["--max-tokens", ">= 0", "-1"]),
    (["--top-logprobs", "21"], ["--top-logprobs", "[0, 20]"]),
    (["-o", "not a name"], ["variable name"]),
    (["--format", "html"], ["widget", "text", "json"]),
    (["--temperature", "warm"], ["number", "warm"]),
])
def test_bad_values_name_what_is_accepted(argv, needles):
    parser = build_parser("%%lmql_generate", GENERATE_OPTIONS)
    with pytest.raises(MagicUsageError) as caught:
        parser.parse_args(argv)
    for needle in needles:
        assert needle in str(caught.value)


def test_score_takes_a_prompt_and_values_with_options_anywhere():
    parser = build_parser("%lmql_score", SCORE_OPTIONS,
                          [("prompt", "", None), ("values", "", "+")])
    args = parser.parse_args(["The capital is", " Paris", " Rome", "--agg", "mean"])
    assert (args.prompt, args.values, args.agg) == ("The capital is", [" Paris", " Rome"], "mean")


def test_constraint_options_reach_generate_as_keywords():
    from lmql_nb.notebook.magics.arguments import GENERATE_OPTIONS, build_parser, model_kwargs
    from lmql_nb.core.options import parse_generate_options

    parser = build_parser("%%lmql_generate", GENERATE_OPTIONS)
    namespace = parser.parse_args(["--stops-at", ".", "--stops-at", "!", "--choice", " yes",
                                   "--choice", " no", "--where", "len(RESPONSE) < 9"])
    kwargs = model_kwargs(GENERATE_OPTIONS, namespace)
    assert kwargs == {"stops_at": [".", "!"], "choices": [" yes", " no"],
                      "where": "len(RESPONSE) < 9"}
    spec = parse_generate_options(5, **kwargs).constraint  # what generate() will accept
    assert spec.choices == (" yes", " no") and spec.stops_at == (".", "!")
    namespace = parser.parse_args(["--type", "int", "--json-schema", '{"type": "object"}'])
    assert model_kwargs(GENERATE_OPTIONS, namespace) == {"type": int,
                                                         "json_schema": {"type": "object"}}
    for bad, message in ((["--type", "float"], "expected 'int'"),
                         (["--json-schema", "{nope"], "expected a JSON schema")):
        with pytest.raises(ValueError, match=message):
            parser.parse_args(bad)
