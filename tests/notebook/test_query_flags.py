"""`%%lmql`'s flags are the query options that declare one (`lmql_nb.query.options`): each
flag, given on a real `%%lmql` line (an in-process IPython shell), resolves to the same
Settings field as the keyword option does in `run`; no flag is lost, and an option added
to the declaration with a flag is a flag."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import lmql_nb
from lmql_nb.core.validation import Rule
from lmql_nb.errors import MagicUsageError
from lmql_nb.notebook.magics import QUERY_PARSER
from lmql_nb.notebook.magics.arguments import (QUERY_OPTIONS, build_parser, model_kwargs,
                                               query_options)
from lmql_nb.query.options import DEFAULTS, Flag, Settings, declared, query_option

PROGRAM = '"Q: Say hello\\nA:[ANSWER]" where len(TOKENS(ANSWER)) < 3'

#: the flags %%lmql has had, as users type them (a flag lost fails here)
SPELLINGS = ["-m", "--model", "--decoder", "-n", "--temperature", "--max-len", "--seed",
             "--top-logprobs", "--inputs", "-o", "--out", "--repetition-penalty",
             "--frequency-penalty", "--presence-penalty"]


def flag_cases(model_id: str) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """For each flagged option: the %%lmql line's words, and the keywords of the `run`
    call that means the same (a flag added without a case fails the test below)."""
    return {
        "model": ([], {}),  # every case names the model: -m ID / model=ID
        "decoder": (["--decoder", "sample"], {"decoder": "sample"}),
        "n": (["--decoder", "sample", "-n", "2"], {"decoder": "sample", "n": 2}),
        "temperature": (["--temperature", "0.5"], {"temperature": 0.5}),
        "seed": (["--decoder", "sample", "--seed", "7"], {"decoder": "sample", "seed": 7}),
        "repetition_penalty": (["--repetition-penalty", "1.3"], {"repetition_penalty": 1.3}),
        "frequency_penalty": (["--frequency-penalty", "0.5"], {"frequency_penalty": 0.5}),
        "presence_penalty": (["--presence-penalty", "-0.5"], {"presence_penalty": -0.5}),
        "max_len": (["--max-len", "512"], {"max_len": 512}),
        "top_logprobs": (["--top-logprobs", "2"], {"top_logprobs": 2}),
        "inputs": (["--inputs", "messages"], {"inputs": ["hi", "there"]}),
    }


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "lmql_nb")
    yield shell
    InteractiveShell.clear_instance()


def test_the_flags_are_the_declared_options_with_a_flag():
    flagged = [o for o in declared() if o.flag is not None]
    def shown(options: Any) -> list:  # all but the parser functions (made anew per call)
        return [(o.flags, o.dest, o.help, o.metavar, o.to_model) for o in options]

    assert shown(QUERY_OPTIONS) == shown(query_options())
    assert [o.dest for o in QUERY_OPTIONS] == [o.name for o in flagged] + ["out"]
    spelled = {s for action in QUERY_PARSER._actions for s in action.option_strings}
    assert spelled == set(SPELLINGS)
    # a declared option without a flag is no flag
    assert "--top-k" not in spelled and "top_k" in {o.name for o in declared()}


@pytest.mark.parametrize("name", [o.name for o in declared() if o.flag is not None])
def test_each_flag_resolves_to_the_setting_its_keyword_does(name, shell, tiny_gpt2_path,
                                                            settings_seen):
    model_id = f"local:{tiny_gpt2_path}"
    cases = flag_cases(model_id)
    assert name in cases, f"%%lmql's flag for {name} has no case in this test: add one"
    words, keywords = cases[name]
    shell.user_ns["messages"] = ["hi", "there"]
    settings_seen.clear()
    shell.run_cell_magic("lmql", " ".join(["-m", model_id, *words, "-o", "flagged"]), PROGRAM)
    from_flag = settings_seen[-1]
    settings_seen.clear()
    from_keyword_result = lmql_nb.run_sync(PROGRAM, model=model_id, **keywords)
    from_keyword = settings_seen[-1]
    assert shell.user_ns["flagged"] is not None and from_keyword_result is not None
    if name == "model":
        assert from_flag.model.model_identifier == from_keyword.model.model_identifier \
            == model_id
    else:
        assert getattr(from_flag, name) == getattr(from_keyword, name)
        assert getattr(from_flag, name) != DEFAULTS[name]  # the flag changed something


def test_a_bad_flag_value_is_refused_in_the_rules_words(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="argument --max-len: max_len must be an int >= 1, "
                       "got 0"):
        shell.run_cell_magic("lmql", "--max-len 0", PROGRAM)


@dataclasses.dataclass(frozen=True)
class WithPatience(Settings):
    """A copy of the declaration with two options more: one with a flag, one without."""

    patience: int = query_option(3, "how long to wait", rule=Rule("int", minimum=0),
                                 flag=Flag("P"))
    x: int = query_option(0, "a one-letter option", rule=Rule("int"), flag=Flag("X"))
    quiet: bool = query_option(False, "no flag")


def test_an_option_declared_with_a_flag_is_a_flag():
    options = query_options(WithPatience)
    assert [o.dest for o in options] == [o.dest for o in QUERY_OPTIONS[:-1]] + \
        ["patience", "x", "out"]
    parser = build_parser("%%lmql", options)
    args = parser.parse_args(["--patience", "4", "-x", "2", "-n", "3"])
    assert model_kwargs(options, args) == {"patience": 4, "x": 2, "n": 3}
    with pytest.raises(MagicUsageError, match="argument --patience: patience must be an int "
                       ">= 0, got -1"):
        parser.parse_args(["--patience", "-1"])
    with pytest.raises(MagicUsageError, match="unrecognized arguments: --quiet"):
        parser.parse_args(["--quiet"])
    assert re.search(r"--patience P\s+how long to wait", parser.format_help())
