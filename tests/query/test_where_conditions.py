"""`where` clauses that combine the hole being decoded with conditions on other variables
(`"B[Y]" where Y == "b" or X == "a"`), on the tiny GPT-2.

As in LMQL, a condition on a variable already filled (or a query argument) is True or
False by the time the hole is decoded, and only what remains constrains the hole; a
condition on a later hole is unknown and constrains nothing (LMQL's None). Each program's
greedy hole equals `generate` by hand with the folded constraint written out.
"""

from __future__ import annotations

import pytest

import lmql_nb

LEN = "len(TOKENS(RESPONSE)) < 4"


@pytest.fixture
def llm(tiny_gpt2_path):
    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


def by_hand(llm, prompt: str, where: str) -> str:
    return llm.generate_sync(prompt, where=where, cache=False)


def test_or_with_a_filled_variable(llm):
    """X == "a" holds: Y is held by its token bound alone; it does not: Y is one of the
    choices as well."""
    q = lmql_nb.query('''
    "A[X]" where X in xs
    "B[Y]" where len(TOKENS(Y)) < 4 and (Y in ["b", "cc"] or X == "a")
    return Y
    ''', is_async=False)
    free = q(["a"])
    assert free == by_hand(llm, "AaB", LEN)
    assert free not in ("b", "cc")  # so the next case shows the choice was enforced
    assert q(["z"]) == by_hand(llm, "AzB", f'{LEN} and RESPONSE in ["b", "cc"]')


def test_the_brief_form_and_a_program_level_where(llm):
    """`"B[Y]" where Y == "b" or X == "a"` inline, and the same condition in the
    program's where (which also constrains X while X is decoded: Y is not filled yet,
    so the `or` leaves X to its own bound)."""
    inline = lmql_nb.query('''
    "A[X]" where len(TOKENS(X)) < 3
    "B[Y]" where Y == "b" or X == "a"
    return X, Y
    ''', is_async=False)
    x = by_hand(llm, "A", "len(TOKENS(RESPONSE)) < 3")
    assert x != "a"
    assert inline() == (x, "b")
    program = lmql_nb.query('''
    argmax
        "A[X]"
        "B[Y]"
        return X, Y
    where
        len(TOKENS(X)) < 3 and len(TOKENS(Y)) < 4 and (Y == "b" or X == "a")
    ''', is_async=False)
    assert program() == (x, "b")


def test_a_later_hole_is_unknown(llm):
    """While X is decoded, Y (later in the same prompt) is not filled: `X == "q" or
    Y == "b"` leaves X free (LMQL's None); when Y is decoded, X == "q" is False, so Y
    must be "b"."""
    q = lmql_nb.query('''
    "A[X] B[Y]" where len(TOKENS(X)) < 3 and (X == "q" or Y == "b")
    return X, Y
    ''', is_async=False)
    x = by_hand(llm, "A", "len(TOKENS(RESPONSE)) < 3")
    assert x != "q"
    assert q() == (x, "b")


def test_not_and_query_arguments(llm, tiny_gpt2_path):
    """`not` flips a folded condition; a query argument folds as a filled variable does;
    conditions on a filled value read its tokens and keywords (INT, len)."""
    q = lmql_nb.query('''
    "A[X]" where X in xs
    "B[Y]" where len(TOKENS(Y)) < 4 and (not (X == "a" and mode == "strict") or Y == "b")
    return Y
    ''', is_async=False)
    free = by_hand(llm, "AaB", LEN)
    assert free != "b"
    assert q(["a"], "strict") == "b"  # not True: only the other branch is left
    assert q(["a"], "loose") == free
    assert q(["z"], "strict") == by_hand(llm, "AzB", LEN)
    counted = lmql_nb.query('''
    "A[X]" where X in xs
    "B[Y]" where len(TOKENS(Y)) < 4 and (Y == "b" or len(TOKENS(X)) > 1 or INT(X))
    return Y
    ''', is_async=False)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_gpt2_path))
    assert len(tokenizer.encode("zz zz")) > 1 and len(tokenizer.encode("z")) == 1
    assert counted(["zz zz"]) == by_hand(llm, "Azz zzB", LEN)
    assert counted(["7"]) == by_hand(llm, "A7B", LEN)
    assert counted(["z"]) == "b"


def test_a_condition_that_is_false_is_a_clear_error(llm):
    """A clause no text of the hole can satisfy once the filled variable is read."""
    q = lmql_nb.query('''
    "A[X]" where X in xs
    "B[Y]" where Y == "b" and X == "a" or X == "c"
    return Y
    ''', is_async=False)
    assert q(["a"]) == "b"
    with pytest.raises(ValueError, match=r"constraints of \[Y\].*is False with X = 'z'"):
        q(["z"])


def test_generate_where_still_names_one_variable(llm):
    """`generate(where=...)` has the one variable RESPONSE: naming another is refused."""
    with pytest.raises(ValueError, match="cannot express .X == \"a\".: only RESPONSE"):
        llm.generate_sync("A", where='RESPONSE == "b" or X == "a"')


def test_a_later_hole_in_a_loop_is_not_read_from_the_last_iteration(llm):
    """In a loop, Y still holds the last iteration's value when X is decoded again: as in
    LMQL, it is not filled yet in this prompt, so it stays unknown (read, Y = "c" would
    make X == "q" necessary, and X is "z")."""
    q = lmql_nb.query('''
    out = []
    for x, y in pairs:
        "A[X] B[Y]" where X == x and Y == y and (X == "q" or Y == "b")
        out.append((X, Y))
    return out
    ''', is_async=False)
    assert q([("q", "c"), ("z", "b")]) == [("q", "c"), ("z", "b")]
    with pytest.raises(ValueError, match=r"intersection is empty"):  # Y == "b" and Y == "c"
        q([("z", "c")])


def test_a_list_of_python_values(llm):
    """`X in [x, "q"]`: a list written with Python values is read when the hole is
    reached, as LMQL evaluates it (it was refused as no literal list)."""
    q = lmql_nb.query('"A[X]" where X in [x, "q"]\nreturn X', is_async=False)
    assert q("zz") == by_hand(llm, "A", 'RESPONSE in ["zz", "q"]')
    with pytest.raises(TypeError, match="must hold only str, got int 3"):
        q(3)
