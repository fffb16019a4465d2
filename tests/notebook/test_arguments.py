"""The magics' option table: one place, turned into argparse parsers."""

import dataclasses

import pytest

from lmql_nb.notebook.arguments import (GENERATE_OPTIONS, SCORE_OPTIONS, MagicUsageError, Option,
                                        build_parser, model_kwargs)
from lmql_nb.options import GenerateOptions


def test_every_option_passed_to_generate_is_a_generate_option():
    accepted = {f.name for f in dataclasses.fields(GenerateOptions)}
    passed = {o.dest for o in GENERATE_OPTIONS if o.to_model}
    assert passed <= accepted
    assert {"max_tokens", "decoder", "n", "temperature", "top_k"} <= passed


def test_only_given_options_reach_the_model():
    parser = build_parser("%%lmql_generate", GENERATE_OPTIONS)
    args = parser.parse_args(["--max-tokens", "7", "--decoder", "sample", "-n", "2",
                              "--temperature", "0.5", "--top-k", "3", "-o", "out", "-m", "x"])
    assert model_kwargs(GENERATE_OPTIONS, args) == {
        "max_tokens": 7, "decoder": "sample", "n": 2, "temperature": 0.5, "top_k": 3}
    assert (args.out, args.model, args.format) == ("out", "x", None)


def test_a_new_option_is_one_line():
    options = GENERATE_OPTIONS + (
        Option(("--regex",), "regex", "the completion matches this"),
        Option(("--stops-at",), "stops_at", "stop after this text", repeatable=True),
    )
    parser = build_parser("%%lmql_generate", options)
    args = parser.parse_args(["--stops-at", ".", "--regex", "[0-9]+", "--stops-at", "\n"])
    assert model_kwargs(options, args) == {"stops_at": [".", "\n"], "regex": "[0-9]+"}
    assert model_kwargs(options, parser.parse_args([])) == {}


@pytest.mark.parametrize("argv, needles", [
    (["--max-tokens", "-1"], ["--max-tokens", ">= 0", "-1"]),
    (["--top-logprobs", "21"], ["--top-logprobs", "0 to 20"]),
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
