"""Nested queries, hole decorators and tool use inside query programs, on the tiny model.

Every hole the model fills is checked against `generate` on the prompt the hole saw
(computed afresh, cache off): a nested query's holes against the outer prompt plus the
inner query's text, exactly what the inner query gives when run on its own with that
prefix as its first statement. The prompt after a nested query with a return value must
hold the value in place of the inner text; without one, the inner text.
"""

from __future__ import annotations

import asyncio

import pytest

import lmql_nb
from lmql_nb.query.runtime import INT_MAX_CHARS
from lmql_nb.query.trace import (HoleSegment, NestedFinished, NestedSegment, NestedStarted,
                                 StepRecorded, StepSegment, TextSegment, Trace)


@pytest.fixture
def llm(tiny_gpt2_path):
    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


def gen(llm, prompt: str, **options) -> str:
    return llm.generate_sync(prompt, cache=False, **options)


# -- nested queries ------------------------------------------------------------------------

@lmql_nb.query
def think():
    '''lmql
    "A: Let's think step by step.[REASONING]" where len(TOKENS(REASONING)) < 5
    return REASONING.strip()
    '''


def test_a_nested_query_sees_the_outer_prompt_and_only_its_return_value_stays(llm):
    result = lmql_nb.run_sync('''
        "Q: What is 2 + 2? [ANSWER: think]"
        " So[REST]" where len(TOKENS(REST)) < 4
    ''')
    question = "Q: What is 2 + 2? "
    reasoning = gen(llm, question + "A: Let's think step by step.", max_tokens=4)
    assert result.variables["ANSWER"] == reasoning.strip()
    rest = gen(llm, question + reasoning.strip() + " So", max_tokens=3)
    assert result.variables["REST"] == rest
    assert result.prompt == question + reasoning.strip() + " So" + rest
    # the inner query, run on its own with the outer prompt as its first statement
    alone = lmql_nb.run_sync('''
        "Q: What is 2 + 2? "
        "A: Let's think step by step.[REASONING]" where len(TOKENS(REASONING)) < 5
    ''')
    nested = result.trace.segments[1]
    assert isinstance(nested, NestedSegment) and nested.hidden
    assert nested.query == "think()" and nested.value == reasoning.strip()
    assert nested.trace.prompt == alone.prompt[len(question):]
    assert [s.text for s in nested.trace.holes()] == [alone.variables["REASONING"]]


@lmql_nb.query
def items_list(n: int):
    '''lmql
    for i in range(n):
        "-[ITEM]" where STOPS_AT(ITEM, "\n") and len(TOKENS(ITEM)) < 4
    '''


def test_a_nested_query_without_return_keeps_its_text(llm):
    result = lmql_nb.run_sync('"Pack:\\n[ITEMS: items_list(2)]"')
    prompt = "Pack:\n"
    for _ in range(2):
        prompt += "-"
        prompt += gen(llm, prompt, max_tokens=3, stops_at="\n")
    assert result.variables["ITEMS"] == prompt[len("Pack:\n"):]
    assert result.prompt == prompt
    nested = result.trace.segments[1]
    assert isinstance(nested, NestedSegment) and not nested.hidden
    assert nested.query == "items_list(2)"
    assert len(nested.trace.holes()) == 2


@lmql_nb.query
def one_of(choices: list):
    '''lmql
    "Among {choices}, the most likely:[ANSWER]" where ANSWER in choices
    return ANSWER
    '''


@lmql_nb.query
def step_then_choose(choices: list):
    '''lmql
    "Think:[ANSWER: one_of(choices)]" where len(TOKENS(ANSWER)) < 12
    return ANSWER.strip()
    '''


@lmql_nb.query
def free():
    '''lmql
    "Say:[R]" where STOPS_AT(R, ".")
    return R
    '''


def test_arguments_and_tail_calls(llm):
    choices = [" yes", " no"]
    result = lmql_nb.run_sync('"Q: Is it?[X: step_then_choose(choices)]"', choices=choices)
    prompt = f"Q: Is it?Think:Among {choices}, the most likely:"
    expected = gen(llm, prompt, choices=choices)
    assert result.variables["X"] == expected.strip()
    assert result.prompt == "Q: Is it?" + expected.strip()
    outer = result.trace.segments[1]
    inner = outer.trace.segments[1]
    assert isinstance(inner, NestedSegment) and inner.query == "one_of([' yes', ' no'])"


def test_the_outer_holes_constraints_reach_the_inner_holes(llm):
    result = lmql_nb.run_sync('"Q:[X: free]" where len(TOKENS(X)) < 3')
    expected = gen(llm, "Q:Say:", max_tokens=2, stops_at=".")
    assert result.X == expected
    unbounded = gen(llm, "Q:Say:", max_tokens=12, stops_at=".")
    assert unbounded != expected  # the bound is what made the difference


@lmql_nb.query
def constant(value):
    '''lmql
    if value == "a":
        return "YES"
    return "NO"
    '''


def test_a_nested_query_with_no_prompt_makes_no_model_call(llm, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no model call expected")

    monkeypatch.setattr(type(llm), "generate", refuse)
    result = lmql_nb.run_sync('"[R: constant(\'a\')] and [S: constant(\'b\')]"')
    assert (result.R, result.S) == ("YES", "NO")
    assert result.prompt == "YES and NO"


class Agent:
    def __init__(self):
        self.topic = "the sky"

    @lmql_nb.query
    def explain(self):
        '''lmql
        "Explain {self.topic}:[E]" where len(TOKENS(E)) < 4
        return E.strip()
        '''

    @lmql_nb.query
    def ask(self):
        '''lmql
        "Q: Why?\n[ANSWER: self.explain]"
        return ANSWER.upper()
        '''


def test_queries_as_methods_bind_self_and_nest(llm):
    agent = Agent()
    expected = gen(llm, "Q: Why?\nExplain the sky:", max_tokens=3).strip()
    assert agent.ask() == expected.upper()
    assert agent.explain() == gen(llm, "Explain the sky:", max_tokens=3).strip()


def test_nested_queries_under_sample_and_beam(llm):
    program = '''
        "Q: What is 2 + 2? [ANSWER: think]"
        "!"
    '''
    samples = lmql_nb.run_sync(program, decoder="sample", n=2, seed=1, temperature=1.0)
    assert len(samples) == 2 and all(s.prompt.endswith("!") for s in samples)
    beams = lmql_nb.run_sync(program, decoder="beam", n=2)
    assert beams and all(isinstance(b.trace.segments[1], NestedSegment) for b in beams)


def test_nested_query_events_nest_and_the_trace_round_trips(llm):
    events = []
    result = lmql_nb.run_sync('"Q: Hi [A: think] and [B: one_of([\'x\', \'y\'])]"',
                              on_event=lambda i, e: events.append(e))
    kinds = [type(e) for e in events]
    assert kinds.count(NestedStarted) == 2 and kinds.count(NestedFinished) == 2
    assert kinds.index(NestedStarted) < kinds.index(NestedFinished)
    again = Trace.from_data(result.trace.to_data())
    assert again.prompt == result.trace.prompt
    assert isinstance(again.segments[1], NestedSegment)
    assert again.segments[1].trace.prompt == result.trace.segments[1].trace.prompt


def test_nested_queries_continue_the_cached_prompt(tiny_llama_path, monkeypatch):
    """No step re-reads the prompt before it: the model computes about as many tokens as
    the text holds (outer, inner and hidden), not the sum of each hole's whole prompt."""
    from lmql_nb.backends.transformers.torch_model import TorchModel

    model = lmql_nb.model(f"local:{tiny_llama_path}")
    model.generate_sync("warm up", max_tokens=1, cache=False)
    model.backend._model.prefixes.clear()
    computed = []
    original = TorchModel.forward

    def recording(self, input_ids, *args, **kwargs):
        computed.append(int(input_ids.shape[0] * input_ids.shape[1]))
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(TorchModel, "forward", recording)
    long = "An introduction to prefixes. " * 2  # no other test asks this (result cache)
    result = lmql_nb.run_sync('''
        "{long}Q: first? [A: think]\\n"
        "Q: second? [B: think]"
    ''', long=long, model=model)
    tokenizer = model.get_tokenizer()
    seen = result.prompt + "".join(s.trace.prompt for s in result.trace.segments
                                   if isinstance(s, NestedSegment))
    total = len(tokenizer.encode_prompt(seen))
    per_hole = sum(len(tokenizer.encode_prompt(long)) for _ in range(3))
    assert sum(computed) <= total + 12 * 2  # a few boundary tokens per hole at most
    assert sum(computed) < per_hole  # re-reading the prefix each time would cost this


def test_nested_query_errors_are_clear(llm):
    with pytest.raises(ValueError, match="outer program's model"):
        lmql_nb.run_sync('"[A: one_of([\'a\'], model=\'x\')]"')
    with pytest.raises(TypeError, match="query function"):
        lmql_nb.run_sync('"[A: print]"')
    with pytest.raises(TypeError, match=r"\[X: len\]: a function as a hole's type"):
        lmql_nb.run_sync('"Calc: [X: len]"')
    with pytest.raises(TypeError, match="one_of\\(\\): got an unexpected"):
        lmql_nb.run_sync('"[A: one_of([\'a\'], wrong=1)]"')


# -- decorators ----------------------------------------------------------------------------

def test_post_decorators_change_value_and_prompt_in_reverse_order(llm):
    calls = []

    def upper(value):
        calls.append("upper")
        return value.upper()

    def tagged(value, prompt_value, context):
        calls.append("tagged")
        assert context.prompt == "Say:"  # the program's context: the prompt before the hole
        return value + "?", prompt_value + "!"

    result = lmql_nb.run_sync('"Say:[@upper @tagged T]" where len(TOKENS(T)) < 4\n"."')
    text = gen(llm, "Say:", max_tokens=3)
    assert calls == ["tagged", "upper"]  # the last written runs first
    assert result.T == (text + "?").upper()
    assert result.prompt == "Say:" + (text + "?").upper() + "."
    steps = [s for s in result.trace.segments if isinstance(s, StepSegment)]
    assert [s.label for s in steps] == ["@tagged", "@upper"]


def test_pre_decorators_fix_values_without_a_model_call_and_streaming_sees_prefixes(llm):
    seen = []

    @lmql_nb.decorators.pre
    def cached(variable):
        return "fixed" if variable.name == "A" else variable

    @lmql_nb.decorators.streaming
    def stream(text, context):
        seen.append(text)

    result = lmql_nb.run_sync('"x[@cached A] y[@cached @stream B]" where len(TOKENS(B)) < 5')
    assert result.A == "fixed"
    b = gen(llm, "xfixed y", max_tokens=4)
    assert result.B == b
    assert seen[0] == "" and seen[-1] == b
    assert all(b.startswith(s) for s in seen) and len(seen) >= 2
    hole_a = next(s for s in result.trace.segments if isinstance(s, HoleSegment))
    assert hole_a.tokens == ()


def test_decorators_with_arguments_and_lmql_decorator_classes(llm):
    def prefix(p):
        def decorate(value):
            return p + value.strip()
        return decorate

    class Upper(lmql_nb.decorators.LMQLDecorator):
        def post(self, value, prompt_value, context):
            return value.upper(), prompt_value

    result = lmql_nb.run_sync('"Say:[@prefix(\'> \') T] [@Upper() U]" where '
                              'len(TOKENS(T)) < 3 and len(TOKENS(U)) < 3')
    t = gen(llm, "Say:", max_tokens=2)
    assert result.T == "> " + t.strip()
    u = gen(llm, "Say:> " + t.strip() + " ", max_tokens=2)
    assert result.U == u.upper()
    assert result.prompt == "Say:> " + t.strip() + " " + u


def test_bad_decorators_name_what_was_wrong(llm):
    with pytest.raises(TypeError, match="a decorator must be a function"):
        lmql_nb.run_sync('"[@x A]"', x=3)
    with pytest.raises(SyntaxError, match="decorator"):
        lmql_nb.run_sync('"[@f( A]"')
    with pytest.raises((NameError, TypeError), match="undefined_decorator"):
        lmql_nb.run_sync('"[@undefined_decorator A]"')


# -- tools ---------------------------------------------------------------------------------

def test_eval_reinsertion_and_async_tools(llm):
    async def lookup(term):
        await asyncio.sleep(0)
        return f"<{term.strip()}>"

    def calc(expression):
        return 6 * 7

    result = lmql_nb.run_sync('''
        "Term:[TERM]" where len(TOKENS(TERM)) < 3
        found = await lookup(TERM)
        "\\nFound: {found} = {calc(TERM)}\\nSo[END]" where len(TOKENS(END)) < 3
    ''', lookup=lookup, calc=calc)
    term = gen(llm, "Term:", max_tokens=2)
    prompt = f"Term:{term}\nFound: <{term.strip()}> = 42\nSo"
    assert result.END == gen(llm, prompt, max_tokens=2)
    assert result.prompt == prompt + result.END
    steps = [s for s in result.trace.segments if isinstance(s, StepSegment)]
    assert [(s.step, s.label, s.text) for s in steps] == [
        ("tool", "lookup(TERM)", ""), ("tool", "calc(TERM)", "42")]
    assert result.trace.prompt == result.prompt


@lmql_nb.query
async def shout(word):
    '''lmql
    "Shout {word}:[LOUD]" where len(TOKENS(LOUD)) < 3
    return word.upper() + LOUD
    '''


@lmql_nb.query
def whisper(word):
    '''lmql
    "Whisper {word}:[SOFT]" where len(TOKENS(SOFT)) < 3
    return word.lower() + SOFT
    '''


def test_calls_in_programs_are_awaited_as_lmql_awaits_them(llm):
    """LMQL's compiler makes every call in a program `await call(f, ...)`: an async
    function or a query gives its value without `await` (LMQL's test_multi_tokenizer
    calls an async query so), `await` of a plain function gives its value, and Python
    code defined in the program (a generator expression, a nested def) is left alone."""
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    def plus_one(x):
        return x + 1

    result = lmql_nb.run_sync('''
        a = double(2)
        b = await double(3)
        c = await plus_one(1)
        d = shout("hey")
        e = await whisper("HO")
        f = [double(i) for i in range(3)]
        g = sum(plus_one(i) for i in range(3))
        "A {double(5)} {shout('x')}:[X]" where len(TOKENS(X)) < 2
        return [a, b, c, d, e, f, g, X]
    ''', double=double, plus_one=plus_one, shout=shout, whisper=whisper)
    # by hand: each query run on its own (its holes by generate on its own prompt)
    loud, soft = (gen(llm, "Shout hey:", max_tokens=2), gen(llm, "Whisper HO:", max_tokens=2))
    x_loud = gen(llm, "Shout x:", max_tokens=2)
    x = gen(llm, f"A 10 X{x_loud}:", max_tokens=1)
    assert result == [4, 6, 2, "HEY" + loud, "ho" + soft, [0, 2, 4], 6, x]
    assert asyncio.run(shout("hey")) == "HEY" + loud  # the same as awaited outside


def test_awaited_calls_are_steps_of_the_trace(llm):
    async def double(x):
        return 2 * x

    outcome = asyncio.run(lmql_nb.query('''
        a = double(2)
        b = len("abc")
        "{a} {b}[X]" where len(TOKENS(X)) < 2
    ''').outcomes(double=double))
    steps = [s for s in outcome[0].result.trace.segments if isinstance(s, StepSegment)]
    assert [(s.step, s.label, s.detail) for s in steps] == [("tool", "double(2)", "→ 4")]


@lmql_nb.query
def twice(n):
    '''lmql
    "{n} and[Y]" where len(TOKENS(Y)) < 2
    return n * 2
    '''


def test_a_nested_querys_parameter_named_like_an_option_is_its_argument(llm):
    # LMQL's rule: a keyword naming the query's parameter is the argument (n, k, seed...)
    result = lmql_nb.run_sync('"a [X: twice(n=3)]"', twice=twice)
    assert result.variables["X"] == 6
    with pytest.raises(ValueError, match=r"takes no seed="):
        lmql_nb.run_sync('"a [X: twice(n=3, seed=1)]"', twice=twice)


def test_a_tool_loop_records_each_call(llm):
    storage = {}

    def remember(i):
        storage[i] = True
        return i * i

    events = []
    result = lmql_nb.run_sync('''
        for i in range(5):
            "[X]" where len(TOKENS(X)) < 2
            " -> {remember(i)}\\n"
    ''', remember=remember, on_event=lambda i, e: events.append(e))
    assert sorted(storage) == [0, 1, 2, 3, 4]
    assert sum(isinstance(e, StepRecorded) for e in events) == 5
    prompt = ""
    for i in range(5):
        prompt += gen(llm, prompt, max_tokens=1) + f" -> {i * i}\n"
    assert result.prompt == prompt
    assert "".join(s.text for s in result.trace.segments) == prompt
    assert all(isinstance(s, (TextSegment, HoleSegment, StepSegment))
               for s in result.trace.segments)


def test_the_notebook_collector_rebuilds_nested_traces_from_events(llm):
    """What `%%lmql` draws while a program runs is built from its events: at the end it
    is the program's own trace, nested queries and steps included."""
    from lmql_nb.notebook.magics.trace_streaming import TraceCollector

    collector = TraceCollector()
    snapshots = []

    def on_event(index, event):
        collector(index, event)
        if isinstance(event, NestedStarted):
            snapshots.append(collector.snapshot()[1][0])

    result = lmql_nb.run_sync('''
        "Q: Hi [A: think] and [@str B: one_of(['x', 'y'])]"
        " {len(A)}{repr(B)}"
    ''', on_event=on_event)
    final = collector.completed()[0]
    assert final.prompt == result.prompt
    assert [s.kind for s in final.segments] == [s.kind for s in result.trace.segments]
    # while the first nested query ran, the row showed it open, inner text and all
    open_nested = snapshots[0].segments[-1]
    assert isinstance(open_nested, NestedSegment) and open_nested.query == "think()"


@lmql_nb.query
def count():
    '''lmql
    "How many?[N: int]" where len(TOKENS(N)) < 3
    return N * 2
    '''


def test_a_call_of_a_function_that_is_no_query_gives_the_holes_type(llm):
    def integer():
        return int

    result = lmql_nb.run_sync('"Number:[X: integer()] and [Y: count]"', integer=integer)
    # an int hole without a length bound of its own stops at INT_MAX_CHARS (issue 25)
    expected = gen(llm, "Number:", where=f"INT(RESPONSE) and len(RESPONSE) <= {INT_MAX_CHARS}")
    assert result.X == int(expected)
    doubled = int(gen(llm, f"Number:{expected} and How many?",
                      where="INT(RESPONSE) and len(TOKENS(RESPONSE)) < 3")) * 2
    assert result.Y == doubled  # a returned int is the value; its str is the text
    assert result.prompt == f"Number:{expected} and {doubled}"
