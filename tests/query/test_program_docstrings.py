"""A query function defined inside a program (as LMQL's nested-queries page writes them in
an `lmql` block, or in a `%%lmql` cell) reads its docstring as written: an escape such as
`\\n` inside the inner program's strings is that string's newline, not a line break of
the inner program, just as for `@lmql.query` in a .py file."""

from __future__ import annotations

import lmql_nb
import lmql_nb as lmql  # noqa: F401  (the programs below read `lmql`)

PROGRAM = r'''
@lmql.query
def inner():
    """lmql
    "A:\n  B[Y]" where len(TOKENS(Y)) < 3
    return Y
    """
def plain():
    """a\nb"""
"Q: [X: inner]"
DOC = plain.__doc__
'''


def test_a_query_defined_in_a_program_keeps_its_escapes(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    result = lmql_nb.run_sync(PROGRAM, model=llm)
    expected = llm.generate_sync("Q: A:\n  B", max_tokens=2, cache=False)
    assert result.variables["X"] == expected
    assert result.prompt == "Q: " + expected


def test_other_functions_docstrings_are_python_strings(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    seen: list[str] = []
    lmql_nb.run_sync(PROGRAM + "seen.append(DOC)\n", model=llm, seen=seen)
    assert seen == ["a\nb"]
