"""Query options: each rule stated once (core/options.py) and every accepted option does
something or is refused: `verbose=True` logs each model call, `chunksize=` is checked and
warns that it changes nothing (lmql_nb checks constraints at every token)."""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.core import options
from lmql_nb.query import layout

PROGRAM = '''argmax
"Q: Say hello\\nA:[ANSWER]" where len(TOKENS(ANSWER)) < 4
"\\nIt is[FEELING]" distribution FEELING in [" good", " bad"]
'''


@pytest.fixture
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


def test_the_decoder_list_and_sampling_rules_are_stated_once(llm):
    assert layout.QUERY_DECODERS is options.QUERY_DECODERS
    # generate and query programs refuse alike, from the same rule
    with pytest.raises(ValueError, match="top_k does not apply to decoder='beam'"):
        options.parse_generate_options(5, decoder="beam", n=2, top_k=3)
    with pytest.raises(ValueError, match="top_k does not apply to decoder='beam'"):
        lmql_nb.run_sync('"x[A]"', decoder="beam", n=2, top_k=3, model=llm)
    with pytest.raises(ValueError, match=r"n=2 needs a decoder that gives several sequences "
                       r"\(sample, beam, beam_sample\)"):
        options.parse_generate_options(5, n=2)
    with pytest.raises(ValueError, match=r"n=2 needs a decoder that gives several sequences "
                       r"\(sample, beam, beam_sample, var, beam_var, best_k\)"):
        lmql_nb.run_sync('"x[A]"', n=2, model=llm)


def test_verbose_logs_each_model_call_with_what_came_back(llm, capsys):
    result = lmql_nb.run_sync(PROGRAM, model=llm, verbose=True, cache=False)
    lines = capsys.readouterr().out.splitlines()
    answer = result.variables["ANSWER"]
    assert lines[0] == (f"lmql_nb [0] generate ANSWER on {llm.model_identifier}: "
                        f"{answer!r} ({len(result.trace.segments[1].tokens)} tokens, "
                        f"{result.trace.segments[1].finish_reason})")
    assert lines[1].startswith(f"lmql_nb [0] score FEELING on {llm.model_identifier}: ' good': ")
    assert lines[1].endswith(f"-> {result.variables['FEELING']!r}")
    # off by default, and in the decoder clause too
    lmql_nb.run_sync(PROGRAM, model=llm, cache=False)
    assert capsys.readouterr().out == ""
    lmql_nb.run_sync(PROGRAM.replace("argmax", "argmax(verbose=True)"), model=llm)
    assert "generate ANSWER" in capsys.readouterr().out
    with pytest.raises(TypeError, match="verbose must be True or False"):
        lmql_nb.run_sync(PROGRAM, model=llm, verbose="yes")


def test_chunksize_is_checked_and_warns_that_it_changes_nothing(llm):
    plain = lmql_nb.run_sync(PROGRAM, model=llm, cache=False)
    with pytest.warns(UserWarning, match="chunksize=4 has no effect in lmql_nb"):
        chunked = lmql_nb.run_sync(PROGRAM.replace("argmax", "argmax(chunksize=4)"),
                                   model=llm, cache=False)
    assert chunked.variables == plain.variables
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="chunksize must be a positive int"):
            lmql_nb.run_sync(PROGRAM, model=llm, chunksize=bad)


def test_lmql_transport_options_are_accepted_and_warn_that_they_change_nothing(llm):
    plain = lmql_nb.run_sync(PROGRAM, model=llm, cache=False)
    with pytest.warns(UserWarning, match="chunk_timeout=10.0 has no effect in lmql_nb"):
        timed = lmql_nb.run_sync(PROGRAM.replace("argmax", "argmax(chunk_timeout=10.0)"),
                                 model=llm, cache=False)
    assert timed.variables == plain.variables
    with pytest.warns(UserWarning, match="openai_nonstop=True has no effect"):
        lmql_nb.run_sync(PROGRAM, model=llm, cache=False, openai_nonstop=True)


def test_a_query_checks_max_len_and_n_with_the_declared_rules(llm):
    expected = options.QUERY_RULES["max_len"].accepted()
    with pytest.raises(ValueError, match=f"max_len must be {expected}"):
        lmql_nb.run_sync(PROGRAM, model=llm, max_len=0)
    with pytest.raises(ValueError, match=f"n must be {options.GENERATE_RULES['n'].accepted()}"):
        lmql_nb.run_sync(PROGRAM, model=llm, decoder="sample", n=0)
