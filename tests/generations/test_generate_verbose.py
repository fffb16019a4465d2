"""`generate(..., verbose=True)`, as LMQL's inference-certificates page calls
`lmql.generate_sync(..., verbose=True)`: one line per call on stdout naming the model, the
prompt and the text that came back (the same text the call returns), marked when it came
from the result cache; nothing without it; a value that is no bool is refused by name."""

from __future__ import annotations

import pytest

import lmql_nb


def test_verbose_prints_the_call_and_its_result(tiny_gpt2_path, capsys):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    text = llm.generate_sync("Hello", max_tokens=3, cache=False)
    assert capsys.readouterr().out == ""
    again = lmql_nb.generate_sync("Hello", max_tokens=3, model=llm, verbose=True)
    assert again == text
    line = capsys.readouterr().out
    assert line == (f"lmql_nb generate on local:{tiny_gpt2_path}: 'Hello' -> {text!r} "
                    f"(3 tokens)\n")
    llm.generate_sync("Hello", max_tokens=3, verbose=True)  # now from the result cache
    assert capsys.readouterr().out == line.replace("(3 tokens)", "(3 tokens, cached)")


def test_a_verbose_that_is_no_bool_is_refused(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(TypeError, match="verbose must be True or False, got 'yes'"):
        llm.generate_sync("Hello", max_tokens=1, verbose="yes")
