"""What LMQL's model-text tests check, restated on the embedded Gemma (see set_asides.py).

Each LMQL test below compares its output with the exact text LMQL's seeded random model
(or Llama-2) wrote. Here the same program runs on the Gemma the suite swaps in, and the
property the test is about is checked against the same calls made by hand through the
Generations API (`generate` with the hole's constraints on the prompt so far).
"""

from __future__ import annotations

import pytest

import lmql_nb
import lmql_shim

pytestmark = [pytest.mark.gemma, pytest.mark.llamacpp]


@pytest.fixture(scope="module")
def m():
    model = lmql_nb.model(lmql_shim.GEMMA, **lmql_shim.GEMMA_OPTIONS)
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


def gen(m, prompt, where):
    return m.generate_sync(prompt, where=where, cache=False)


def test_noprompt_hole_continues_the_empty_prompt(m):
    """test_noprompt: a program that is only a hole generates from the empty prompt."""
    result = lmql_nb.run_sync('"[RESPONSE]" where len(TOKENS(RESPONSE)) < 10')
    assert result.variables["RESPONSE"] == gen(m, "", "len(TOKENS(RESPONSE)) < 10")


def test_noprompt_beam_gives_two_ranked_results(m):
    """test_noprompt_beam: beam(n=2) on an empty prompt gives two results, best first."""
    results = lmql_nb.run_sync('beam(n=2)\n"[RESPONSE]" where len(TOKENS(RESPONSE)) < 10')
    assert len(results) == 2
    assert results[0].trace.logprob >= results[1].trace.logprob
    tokenizer = m.get_tokenizer()
    assert all(len(tokenizer.encode(r.variables["RESPONSE"])) < 10 for r in results)


def test_curly_escapes_and_interpolation(m):
    """test_curly_braces: {{ }} are braces, {value} interpolates text with brackets that
    stays text, and the hole's text sits between them in the prompt."""
    result = lmql_nb.run_sync('''lmql
    argmax
        value = "[abc]"
        "{{ Say {value} 'this is a test':[RESPONSE] }}"
    where
        len(TOKENS(RESPONSE)) < 10
    ''')
    expected = gen(m, "{ Say [abc] 'this is a test':", "len(TOKENS(RESPONSE)) < 10")
    assert result.prompt == "{ Say [abc] 'this is a test':" + expected + " }"


class Log:
    pre = stream = post = None


def test_decorators_see_the_variable_its_stream_and_its_value(m):
    """test_decorators, test_inner_decorator, test_streaming_decorator: `pre` gets the
    variable, a streaming decorator every prefix of the value as it grows, `post` the
    value, whose return replaces it in the program and in the prompt."""
    log = Log()
    streamed = []

    @lmql_nb.decorators.pre
    def pre(variable):
        log.pre = variable
        return variable

    @lmql_nb.decorators.streaming
    def stream(s, context):
        streamed.append(s)

    def post(value):
        log.post = value
        return 12

    @lmql_nb.query
    def q():
        '''lmql
        "Say 'this is a test':\n[@post @stream @pre RESPONSE]" where len(TOKENS(RESPONSE)) < 10
        return RESPONSE, context.prompt
        '''

    value, prompt = q()
    expected = gen(m, "Say 'this is a test':\n", "len(TOKENS(RESPONSE)) < 10")
    assert log.pre.name == "RESPONSE"
    assert log.post == expected and streamed[-1] == expected
    assert all(expected.startswith(s) for s in streamed)
    assert value == 12 and prompt == "Say 'this is a test':\n12"


@lmql_nb.query
def chain_of_thought():
    '''lmql
    "A: Let's think step by step. [ANSWER]" where len(TOKENS(ANSWER)) < 4
    return ANSWER.strip()
    '''


@lmql_nb.query
def one_of(choices: list):
    '''lmql
    "Among {choices}, what do you consider most likely? [ANSWER]" where ANSWER in choices
    return ANSWER
    '''


def test_nested_queries_continue_the_outer_prompt(m):
    """test_cot_fct, test_multi_nested, test_one_of, test_nested_queries: a nested query
    fills the hole with its return value, computed on the outer prompt followed by its
    own prompt; only the value stays in the outer prompt."""
    outer = "Q: It is August 12th, 2020. What date was it 100 days ago? "
    result = lmql_nb.run_sync(f'"{outer}[ANSWER: chain_of_thought]"')
    inner = gen(m, outer + "A: Let's think step by step. ", "len(TOKENS(RESPONSE)) < 4")
    assert result.variables["ANSWER"] == inner.strip()
    assert result.prompt == outer + inner.strip()

    choices = ["Berlin", "Paris", "London"]
    question = "Q: What is the capital of France? "
    picked = lmql_nb.run_sync(f'"{question}[ANSWER: one_of({choices!r})]"')
    prompt = question + f"Among {choices}, what do you consider most likely? "
    assert picked.variables["ANSWER"] == m.generate_sync(prompt, choices=choices, cache=False)


@lmql_nb.query
def items_list(n: int):
    '''lmql
    for i in range(n):
        "-[ITEM]\n" where STOPS_AT(ITEM, "\n") and len(TOKENS(ITEM)) == 3
    '''


def test_nested_query_without_return_inserts_its_prompt(m):
    """test_no_return, test_nested_no_return_in_query: a nested query without `return`
    gives its own prompt text, which stays in the outer prompt."""
    result = lmql_nb.run_sync('"Things to pack:\\n[ITEMS: items_list(2)]"')
    prompt = "Things to pack:\n"
    inserted = ""
    for _ in range(2):
        item = gen(m, prompt + inserted + "-",
                   'STOPS_AT(RESPONSE, "\\n") and len(TOKENS(RESPONSE)) == 3')
        inserted += "-" + item + "\n"
    assert result.variables["ITEMS"] == inserted


def test_models_with_different_tokenizers_in_one_process(m, tiny_llama_path):
    """test_random_gpt, test_random_llama, test_llama_from_gpt: two models with different
    tokenizers in one process, each hole exactly 4 of its own model's tokens."""
    llama = lmql_nb.model(f"local:{tiny_llama_path}")
    program = '"Hello[WORLD]" where len(TOKENS(WORLD)) == 4\nreturn WORLD'
    for model in (m, llama):
        world = lmql_nb.run_sync(program, model=model)
        by_hand = model.generate_sync("Hello", where="len(TOKENS(RESPONSE)) == 4",
                                      return_details=True, cache=False)
        assert world == by_hand.text and len(by_hand.tokens) == 4
    # test_llama_from_gpt: a program on one model calls an async query on the other
    # without await; the call gives that query's value (LMQL awaits calls in programs)
    on_llama = lmql_nb.query(program, model=llama)
    both = lmql_nb.run_sync(f"{program.split(chr(10))[0]}\nreturn [WORLD, on_llama()]",
                            model=m, on_llama=on_llama)
    assert both == [gen_4(m), gen_4(llama)]


def gen_4(model) -> str:
    return model.generate_sync("Hello", where="len(TOKENS(RESPONSE)) == 4", cache=False)


@pytest.mark.parametrize("where, by_hand", [
    # test_stopping_single_match, test_stopping_double_match: a stop phrase kept
    ('STOPS_AT(COMPL, "\\"")', 'STOPS_AT(RESPONSE, "\\"")'),
    # test_conditional_stopping, test_stop_should_not_postprocess_if_sc_not_satisfied:
    # a stop phrase counts only once the lower bound holds
    ("len(TOKENS(COMPL)) > 12 and STOPS_AT(COMPL, 'e')",
     "len(TOKENS(RESPONSE)) > 12 and STOPS_AT(RESPONSE, 'e')"),
    # test_stop_before_should_not_postprocess_if_sc_not_satisfied: the same, dropped
    ("len(TOKENS(COMPL)) > 12 and STOPS_BEFORE(COMPL, 'e')",
     "len(TOKENS(RESPONSE)) > 12 and STOPS_BEFORE(RESPONSE, 'e')"),
    # test_double_stop_rewrite: two stop phrases, the first to occur ends the value
    ("STOPS_BEFORE(COMPL, ' ') and STOPS_AT(COMPL, 'e')",
     "STOPS_BEFORE(RESPONSE, ' ') and STOPS_AT(RESPONSE, 'e')"),
])
def test_stopping_phrases_and_length_bounds(m, where, by_hand):
    prompt = 'My name is Peter. In JSON:\\n{{\\n    "name": "'
    result = lmql_nb.run_sync(f"'{prompt}[COMPL]' where {where} and len(TOKENS(COMPL)) < 40")
    text = prompt.replace("\\n", "\n").replace("{{", "{")
    expected = gen(m, text, f"{by_hand} and len(TOKENS(RESPONSE)) < 40")
    assert result.variables["COMPL"] == expected
    if "> 12" in where:
        assert len(m.get_tokenizer().encode(expected)) > 12


def test_back_to_back_holes_are_recorded_call_by_call(m):
    """test_back2back_caching (its count of LMQL's own protocol calls aside): three holes
    back to back fill in turn, each model call in the query's certificate."""
    q = lmql_nb.query('''lmql
    argmax
        "1. Thought I believe in you\\n"
        "2. Action I will help\\n"
        "3. Thought This is good\\n"
        "[NUM][MODE][CONTENT]"
    where
        MODE in [" Action", " Thought"] and STOPS_AT(CONTENT, "\\n") and STOPS_AT(NUM, ".") and len(TOKENS(NUM)) < 4 and len(TOKENS(CONTENT)) < 16
    ''')
    with lmql_nb.traced("back2back") as t:
        result = lmql_nb.main(q)
    events = lmql_nb.certificate(t).asdict()["children"][0]["events"]
    calls = [e["data"] for e in events if e["name"] == "lmql_nb.generate"]
    assert [c["result"][0] for c in calls] == [result.variables[n]
                                              for n in ("NUM", "MODE", "CONTENT")]
    assert result.prompt.endswith(result.variables["NUM"] + result.variables["MODE"]
                                  + result.variables["CONTENT"])
