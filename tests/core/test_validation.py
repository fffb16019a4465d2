"""One wording for bad values, whichever entry point they come through."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lmql_nb.errors import MagicUsageError
from lmql_nb.core.validation import (Options, Rule, check_bool, check_choice, check_int,
                                check_number, check_strings, option)


@pytest.mark.parametrize("call, error, message", [
    (lambda: check_int("n", 0, minimum=1), ValueError, "n must be an int >= 1, got 0"),
    (lambda: check_int("n", True, minimum=1), TypeError, "n must be an int >= 1, got bool True"),
    (lambda: check_int("n", 2.0), TypeError, "n must be an int, got float 2.0"),
    (lambda: check_int("k", 21, 0, 20), ValueError, "k must be an int in [0, 20], got 21"),
    (lambda: check_int("s", -1, 0, optional=True), ValueError,
     "s must be an int >= 0 or None, got -1"),
    (lambda: check_number("p", 0, 0, 1, open_minimum=True), ValueError,
     "p must be a number in (0, 1], got 0"),
    (lambda: check_number("p", math.nan), ValueError, "p must be a number, got nan"),
    (lambda: check_number("t", "1", 0.001, unit="of seconds"), TypeError,
     "t must be a number of seconds >= 0.001, got str '1'"),
    (lambda: check_bool("cache", "no"), TypeError, "cache must be True or False, got str 'no'"),
    (lambda: check_choice("d", "x", ("a", "b")), ValueError, "d must be one of a, b, got 'x'"),
    (lambda: check_choice("d", ["a"], ("a", "b")), ValueError,
     "d must be one of a, b, got ['a']"),
    (lambda: check_strings("stop", ["a", ""]), ValueError,
     "stop[1] is empty: a stop string needs at least one character"),
    (lambda: Rule("str", secret=True).check("api_key", 12345), TypeError,
     "api_key must be a non-empty str, got int <hidden>"),
])
def test_the_wording(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == message


def test_accepted_values_come_back_normalised():
    assert check_number("p", 1) == 1.0 and isinstance(check_number("p", 1), float)
    assert check_int("n", None, optional=True) is None
    assert check_strings("stop", "x") == ("x",)
    assert check_strings("stop", ["a", "b", "a"]) == ("a", "b")
    assert Rule("int", minimum=0).parse_text("7") == 7
    assert Rule("bool").parse_text("false") is False
    with pytest.raises(ValueError, match="n must be an int >= 1, got 'two'"):
        Rule("int", minimum=1).parse_text("two", "n")


def test_every_entry_point_refuses_with_the_same_words():
    from lmql_nb.notebook.magics.arguments import GENERATE_OPTIONS, build_parser
    from lmql_nb.core.options import parse_generate_options

    sentence = "top_logprobs must be an int in [0, 20], got 21"
    with pytest.raises(ValueError) as api:
        parse_generate_options(top_logprobs=21)
    assert str(api.value) == sentence
    with pytest.raises(MagicUsageError) as magic:
        build_parser("%%lmql_generate", GENERATE_OPTIONS).parse_args(["--top-logprobs", "21"])
    assert sentence in str(magic.value)

    sentence = "n must be an int >= 1, got 0"
    with pytest.raises(ValueError) as api:
        parse_generate_options(n=0)
    assert str(api.value) == sentence
    with pytest.raises(MagicUsageError) as magic:
        build_parser("%%lmql_generate", GENERATE_OPTIONS).parse_args(["-n", "0"])
    assert sentence in str(magic.value)


def test_the_cli_says_it_in_those_words(capsys):
    from lmql_nb.cli import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(["generate", "p", "-n", "0"])
    assert "n must be an int >= 1, got 0" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _Example(Options):
    size: int = option(3, "how many", "int", minimum=1, maximum=9)
    mode: str = option("fast", "how", "choice", choices=("fast", "slow"))


def test_an_options_class_checks_and_documents_its_declaration():
    assert _Example.parse({"size": 4}, "thing") == _Example(size=4, mode="fast")
    with pytest.raises(ValueError, match=r"size must be an int in \[1, 9\], got 10"):
        _Example.parse({"size": 10}, "thing")
    with pytest.raises(TypeError, match="thing got unknown option 'colour'; accepted "
                                        "options are: mode, size"):
        _Example.parse({"colour": 1}, "thing")
    assert _Example.markdown().splitlines()[2:] == [
        "| `size` | `3` | an int in [1, 9] | how many |",
        "| `mode` | `'fast'` | one of fast, slow | how |",
    ]
