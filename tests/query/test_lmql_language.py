"""LMQL's language surface around programs, on the tiny GPT-2: program layout, `context`,
the return-value rules, where-clause names, output writers, `main`, `algorithms.map`,
`tokenizer`, the query builder's text, and sync calls from async code.

Each check compares against what LMQL documents (or its own test suite asserts) and, where
a model is involved, against the same calls made by hand through the Generations API.
"""

from __future__ import annotations

import asyncio
import warnings

import pytest

import lmql_nb
import lmql_nb.algorithms as la

COUNTER = 0


@pytest.fixture
def llm(tiny_gpt2_path):
    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


# -- return values ------------------------------------------------------------------------

@lmql_nb.query
def two_path_return(a: int):
    '''lmql
    if a > 0:
        return None
    elif a == 0:
        return
    else:
        return "Something"
    return "Never"
    '''


@lmql_nb.query
def falls_off(a: int):
    '''lmql
    "Hello"
    if a > 0:
        return "early"
    '''


def test_return_rules(llm):
    """LMQL's rule: `return None` gives None; a bare `return`, or a path that ends without
    a return, gives the LMQLResult; without a model call there is one output, whatever
    the decoder's n."""
    assert two_path_return(1) is None
    assert two_path_return(-1) == "Something"
    result = two_path_return(0)
    assert type(result) is lmql_nb.LMQLResult and result.prompt == ""
    assert two_path_return(-1, decoder="sample", n=2) == "Something"
    assert falls_off(1) == "early"
    fell = falls_off(0)
    assert type(fell) is lmql_nb.LMQLResult and fell.prompt == "Hello"


def test_no_return_with_holes_gives_results(llm):
    program = lmql_nb.query('"Hi,[X]" where len(TOKENS(X)) < 3', is_async=False)
    one = program()
    assert type(one) is lmql_nb.LMQLResult
    two = program(decoder="sample", n=2, seed=1)
    assert len(two) == 2 and all(type(r) is lmql_nb.LMQLResult for r in two)


def test_result_index_zero_is_the_result(llm):
    """LMQL's legacy `result[0]` on a single result reads the result itself."""
    result = lmql_nb.run_sync('"Hi,[X]" where len(TOKENS(X)) < 3')
    with pytest.warns(DeprecationWarning):
        assert result[0] is result
    with pytest.raises(IndexError, match="only result\\[0\\]"):
        result[1]


# -- layout ---------------------------------------------------------------------------------

def test_marker_line_and_upper_case_clauses(llm):
    """A string program may start with LMQL's `lmql` marker line and indent its body;
    FROM / WHERE are read as from / where."""
    source = '''lmql
    argmax
        "Say:[X]"
    FROM
        MODEL
    WHERE
        len(TOKENS(X)) < 4
    '''
    result = lmql_nb.run_sync(source, MODEL=llm)
    expected = llm.generate_sync("Say:", 3, cache=False)
    assert result.variables["X"] == expected


def test_statements_after_a_decoder_line_belong_to_the_program(llm):
    """`argmax "..." where ...` on one line, then statements at column 0: they are the
    program's (the `return X` was once dropped, and the LMQLResult came back)."""
    expected = llm.generate_sync("Say:", 3, cache=False)
    for source in ('argmax "Say:[X]" where len(TOKENS(X)) < 4\nreturn X',
                   'argmax\n    "Say:[X]" where len(TOKENS(X)) < 4\nreturn X + "!"'):
        result = lmql_nb.run_sync(source)
        assert result == expected + ("!" if "!" in source else "")


def test_decoder_arguments_read_query_arguments(llm):
    program = lmql_nb.query('''lmql
    sample(n=k, temperature=0.7)
        "Say:[X]" where len(TOKENS(X)) < 3
    ''', is_async=False)
    results = program(k=3, seed=0)
    assert len(results) == 3


def test_query_defined_in_a_function_with_a_prologue(llm):
    """Statements before the decoder clause are the query's prologue: what they define
    are the query's globals (LMQL's scoping), not its locals, and do not leak into the
    defining module."""
    @lmql_nb.query
    def q(actual_input: str = "x"):
        '''lmql
        a = 12

        def f(): return 12

        argmax
            "Q: {actual_input} {a}{f()}[X]" where len(TOKENS(X)) < 2
            assert locals().get("a") is None and globals().get("a") == 12
            assert "actual_input" in locals() and "actual_input" not in globals()
            return context.prompt
        '''

    assert q().startswith("Q: x 1212")
    assert "a" not in globals() and "f" not in globals()


def test_context_prompt_and_variables(llm):
    """`context.prompt` is the prompt so far; a function parameter named `context` stays
    the function's own."""
    @lmql_nb.query
    def q():
        '''lmql
        "Hello[X]" where len(TOKENS(X)) < 3
        seen = (context.prompt, context.variables, context.num_calls)

        def own(context):
            return context

        return seen, own(7)
        '''

    (prompt, variables, calls), own = q()
    expected = llm.generate_sync("Hello", 2, cache=False)
    assert prompt == "Hello" + expected
    assert variables == {"X": expected} and calls == 1
    assert own == 7


# -- where names and arguments ------------------------------------------------------------

def test_where_may_name_a_query_argument(llm):
    """LMQL: a program-level where naming a variable that is no hole reads it as the
    query's variable; undefined at the call, it is a TypeError naming it."""
    @lmql_nb.query
    def named(s):
        '''lmql
        argmax
            "Say[X]"
            return s
        where
            len(TOKENS(X)) < 3 and STOPS_AT(s, ".")
        '''

    assert named("hi") == "hi"

    @lmql_nb.query
    def undefined(s):
        '''lmql
        argmax
            return s
        where
            STOPS_AT(ANSWER, "test") and STOPS_AT(OTHER, "test")
        '''

    with pytest.raises(TypeError, match="Failed to resolve variables in LMQL query: "
                                        "'ANSWER', 'OTHER'"):
        undefined("x")


def test_free_variables_by_keyword_and_input_variables(llm):
    @lmql_nb.query
    def no_signature():
        '''lmql
        return s, COUNTER
        '''

    with pytest.raises(TypeError, match="Failed to resolve variable 's'"):
        no_signature()
    assert no_signature(s="given") == ("given", COUNTER)
    ordered = lmql_nb.query("return s, a", input_variables=["s", "a"], is_async=False)
    assert ordered("first", 2) == ("first", 2)
    assert ordered("first", a=3) == ("first", 3)


def test_sync_query_inside_a_coroutine_is_refused(llm):
    """As in LMQL: a sync query call inside a running event loop (outside a notebook)
    would block it; the error says to await instead. The async form works there."""
    async def inside():
        with pytest.raises(RuntimeError, match="cannot be called synchronously from within "
                                               "an async context"):
            lmql_nb.run_sync("return 1")
        return await lmql_nb.run("return 1")

    assert asyncio.run(inside()) == 1


# -- Python entry points --------------------------------------------------------------------

def test_output_writers_follow_the_run(llm, capsys):
    """`stream("X")` prints X's text as it is generated; `printing` shows the prompt."""
    program = lmql_nb.query('"Say:[X]" where len(TOKENS(X)) < 5', is_async=False)
    result = program(output_writer=lmql_nb.stream("X"))
    assert capsys.readouterr().out == result.variables["X"]
    program(output_writer=lmql_nb.printing)
    assert capsys.readouterr().out.rstrip("\n").endswith(result.prompt)
    program(output_writer=lmql_nb.silent)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="output_writer must be"):
        program(output_writer=3)


def test_main_map_output_variables(llm):
    q = lmql_nb.query('"A {x}:[Y]" where len(TOKENS(Y)) < 3')
    assert q.output_variables == ["Y"]
    assert lmql_nb.main(q, "b").variables["Y"] == llm.generate_sync("A b:", 2, cache=False)
    items = ["one", "two"]
    mapped = lmql_nb.main(la.map, "Say {x}:[Y]", items, where="len(TOKENS(Y)) < 3")
    assert mapped == [llm.generate_sync(f"Say {x}:", 2, cache=False) for x in items]
    f = lmql_nb.F("Say {x}:[Y]", "len(TOKENS(Y)) < 3", is_async=True)
    assert asyncio.run(la.map(f, items)) == mapped
    assert asyncio.run(la.reduce(lambda a, b: a + b, [1, 2, 3])) == 6


def test_tokenizer_is_the_models(llm, tiny_gpt2_path):
    """`lmql.tokenizer(id)` tokenises as the model's own tokenizer does (transformers)."""
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tiny_gpt2_path))
    t = lmql_nb.tokenizer(f"local:{tiny_gpt2_path}")
    text = "The capital of France is Paris."
    assert t(text)["input_ids"] == reference.encode(text, add_special_tokens=False)
    assert t.decode(t(text)["input_ids"]) == text


def test_query_builder_text_is_lmqls():
    query = (lmql_nb.QueryBuilder()
             .set_decoder("argmax")
             .set_prompt("What is the capital of France? [ANSWER]")
             .set_model("local:gpt2")
             .set_where("len(TOKENS(ANSWER)) < 10")
             .set_where("STOPS_AT(ANSWER, '.') or STOPS_AT(ANSWER, '!')")
             .build())
    assert query.query_string == (
        'argmax "What is the capital of France? [ANSWER]" from "local:gpt2" where '
        "len(TOKENS(ANSWER)) < 10 and (STOPS_AT(ANSWER, '.') or STOPS_AT(ANSWER, '!'))")
    quoted = lmql_nb.QueryBuilder().set_prompt('Say "hi"\n[X]').build().query_string
    assert quoted == '"Say \\"hi\\"\\n[X]"'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lmql_nb.query(quoted).output_variables == ["X"]


# -- inference certificates -----------------------------------------------------------------

def test_certificates_record_each_model_call(llm, tmp_path, capsys):
    """LMQL's inference certificates: `traced` collects every call (a query's as a child
    certificate, a plain generate as an event); each event carries the prompt's token
    ids as the model read them and what the call returned."""
    say = lmql_nb.F("Greet the world:[GREETING]", "len(TOKENS(GREETING)) < 4")
    with lmql_nb.traced("my-context") as t:
        greeting = say()
        more = lmql_nb.generate_sync("Greet the animals:", max_tokens=3, cache=False)
    data = lmql_nb.certificate(t).asdict()
    assert data["name"] == "my-context" and len(data["children"]) == 1
    child = data["children"][0]
    calls = [e for e in child["events"] if e["name"] == "lmql_nb.generate"]
    assert len(calls) == 1
    call = calls[0]["data"]
    assert call["prompt"] == "Greet the world:" and call["result"] == [greeting]
    assert call["prompt_ids"] == llm.get_tokenizer().encode_prompt("Greet the world:")
    results = [e for e in child["events"] if e["name"] == "lmql.LMQLResult"]
    assert results[0]["data"][0]["variables"] == {"GREETING": greeting}
    outer = [e["data"] for e in data["events"] if e["name"] == "lmql_nb.generate"]
    assert outer[0]["result"] == [more] and outer[0]["kwargs"]["max_tokens"] == 3
    assert data["metrics"]["lmql_nb"]["requests"] == 2
    assert "lmql_nb" in data["environment"]

    path = tmp_path / "certificate.json"
    say(certificate=str(path))
    import json

    written = json.loads(path.read_text())
    assert written["name"] == "F" and written["events"][0]["data"]["result"] == [greeting]
    received = []
    say(certificate=received.append)
    assert isinstance(received[0], lmql_nb.InferenceCertificate)
    say(certificate=True)
    assert json.loads(capsys.readouterr().out)["name"] == "F"


@pytest.mark.gemma
def test_docs_lmql_examples_run_as_written(gemma, capsys):
    """docs/lmql.md's examples, in order, on the embedded model; what they print is what
    the page says they compute."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "lmql.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
    assert len(blocks) == 4
    lmql_nb.set_default_model(gemma)
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "<docs/lmql.md>", "exec"), namespace)
    finally:
        lmql_nb.api._default = None
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:] == ["True", "2",
                           'argmax "What is the capital of France? [ANSWER]" where '
                           "len(TOKENS(ANSWER)) < 4", "1 2"]
