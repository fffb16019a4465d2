"""Query programs on the tiny models: LMQL's documented examples, decoders, the Python
entry points and errors.

Each hole is checked against `generate` on the prompt built so far (with the hole's
constraints, computed afresh), each distribution against `score`: the program's results
must be what the Generations API gives for the same calls.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

import lmql_nb
from lmql_nb.core import aio
from lmql_nb.query.trace import (DistributionSegment, HoleFinished, HoleSegment,
                                 SequenceFinished, SequenceStarted, TextAppended, TokenAppended,
                                 Trace)

from installed import dev_package


@pytest.fixture
def llm(tiny_gpt2_path):
    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


def check_trace(llm, trace: Trace, constraints: dict[str, dict], max_len: int = 2048) -> None:
    """Every hole equals `generate` on the prompt before it; every distribution `score`."""
    prefix = ""
    tokenizer = llm.get_tokenizer()
    for segment in trace.segments:
        if isinstance(segment, HoleSegment):
            options = dict(constraints.get(segment.name, {}))
            left = min(max_len - len(tokenizer.encode_prompt(prefix)),
                       options.pop("max_tokens", max_len))
            expected = llm.generate_sync(prefix, left, cache=False, **options)
            assert segment.text == expected, (segment.name, prefix)
        elif isinstance(segment, DistributionSegment):
            scored = llm.score_sync(prefix, list(segment.values), cache=False)
            assert segment.probs == pytest.approx(list(scored.probs()), abs=1e-6)
            assert segment.chosen == scored.argmax()
        prefix += segment.text
    assert prefix == trace.prompt


# -- LMQL's documented examples ------------------------------------------------------------

SENTIMENT = '''
# review to be analyzed
review = """Great stay.
            Good food."""

# use prompt statements to pass information to the model
"Review: {review}"
"Q: Why?"
# template variables like [ANALYSIS] are used to generate text
"A:[ANALYSIS]" where not "\\n" in ANALYSIS and len(TOKENS(ANALYSIS)) < 10

# use constrained variable to produce a classification
"Overall\\
 it is[CLS]" where CLS in [" positive", " neutral", " negative"]

CLS # positive
'''


def test_overview_sentiment(llm):
    result = lmql_nb.run_sync(SENTIMENT)
    assert isinstance(result, lmql_nb.LMQLResult)
    assert result.prompt.startswith("Review: Great stay.\n            Good food.Q: Why?A:")
    assert "\n" not in result.variables["ANALYSIS"]
    assert result.variables["CLS"] in (" positive", " neutral", " negative")
    assert result.prompt.endswith("Overall it is" + result.variables["CLS"])
    check_trace(llm, result.trace, {
        "ANALYSIS": {"where": 'not "\\n" in RESPONSE and len(TOKENS(RESPONSE)) < 10'},
        "CLS": {"choices": [" positive", " neutral", " negative"]}})


def test_overview_distribution_standalone(llm):
    result = lmql_nb.run_sync('''
argmax
    review = "Great stay."
    "Review: {review}"
    "A:[ANALYSIS]" where not "\\n" in ANALYSIS and len(TOKENS(ANALYSIS)) < 6
    "It is[CLS]"
distribution
   CLS in [" positive", " neutral", " negative"]
''')
    pairs = result.variables["P(CLS)"]
    assert [v for v, _ in pairs] == [" positive", " neutral", " negative"]
    assert sum(p for _, p in pairs) == pytest.approx(1.0)
    assert result.variables["CLS"] == max(pairs, key=lambda vp: vp[1])[0]
    assert result.distribution_variable == "CLS"
    assert result.distribution_values == [" positive", " neutral", " negative"]
    check_trace(llm, result.trace, {"ANALYSIS": {
        "where": 'not "\\n" in RESPONSE and len(TOKENS(RESPONSE)) < 6'}})


DYNAMIC = '''argmax
   review = """Great stay.
               Good food."""
   """Review: {review}
   Q: Why?
   A:[ANALYSIS]""" where not "\\n" in ANALYSIS and len(TOKENS(ANALYSIS)) < 5

   "It is[CLS]" where CLS in [" positive", " neutral", " negative"]

   if CLS == " positive":
      "Liked? [FURTHER_ANALYSIS]"
   elif CLS == " neutral":
      "Improve? [FURTHER_ANALYSIS]"
   elif CLS == " negative":
      "Disliked? [FURTHER_ANALYSIS]"
where
   STOPS_AT(FURTHER_ANALYSIS, ".") and len(TOKENS(FURTHER_ANALYSIS)) < 6
'''


def test_control_flow_follows_the_model(llm):
    result = lmql_nb.run_sync(DYNAMIC)
    # a multi-line prompt string loses its statement's indentation
    assert result.prompt.startswith("Review: Great stay.\n               Good food.\nQ: Why?\nA:")
    question = {" positive": "Liked?", " neutral": "Improve?",
                " negative": "Disliked?"}[result.variables["CLS"]]
    assert question in result.prompt
    check_trace(llm, result.trace, {
        "ANALYSIS": {"where": 'not "\\n" in RESPONSE and len(TOKENS(RESPONSE)) < 5'},
        "CLS": {"choices": [" positive", " neutral", " negative"]},
        "FURTHER_ANALYSIS": {"stops_at": ".", "max_tokens": 5}})


def test_packing_list_loop_and_cross_variable_constraint(llm, capsys):
    result = lmql_nb.run_sync('''
"A list for the sea: \\n"
backpack = []
for i in range(3):
   "-[THING]" where STOPS_AT(THING, "\\n") and len(TOKENS(THING)) < 5
   backpack.append(THING.strip() or "x")
print(backpack)
"Most essential: [ESSENTIAL_THING]" \\
    where ESSENTIAL_THING in backpack
''')
    printed = capsys.readouterr().out
    backpack = eval(printed)  # the program printed a list of its own strings
    assert len(backpack) == 3
    assert result.variables["ESSENTIAL_THING"] in backpack
    holes = [s for s in result.trace.segments if isinstance(s, HoleSegment)]
    assert [h.name for h in holes] == ["THING"] * 3 + ["ESSENTIAL_THING"]
    prefix = ""
    for segment in result.trace.segments:  # each THING as generate gives it
        if isinstance(segment, HoleSegment) and segment.name == "THING":
            assert segment.text == llm.generate_sync(prefix, max_tokens=4, stops_at="\n",
                                                     cache=False)
        if isinstance(segment, HoleSegment) and segment.name == "ESSENTIAL_THING":
            assert segment.text == llm.generate_sync(prefix, choices=list(dict.fromkeys(backpack)),
                                                     cache=False)
        prefix += segment.text


def test_escaping_and_typed_template(llm):
    result = lmql_nb.run_sync('''argmax
    """
    Bruno Mars:
    {{
      "name": "[STRING_VALUE]",
      "age": [INT_VALUE],
      "top_songs": [[
         "[STRING_VALUE]"
      ]]
    }}
    """
where
    STOPS_BEFORE(STRING_VALUE, '"') and len(TOKENS(STRING_VALUE)) < 4 and INT(INT_VALUE) and len(TOKENS(INT_VALUE)) < 3
''')
    assert result.prompt.startswith('\nBruno Mars:\n{\n  "name": "')
    assert '"top_songs": [\n' in result.prompt and result.prompt.endswith("  ]\n}\n")
    int(result.variables["INT_VALUE"])  # an integer's text
    check_trace(llm, result.trace, {
        "STRING_VALUE": {"stops_before": '"', "max_tokens": 3},
        "INT_VALUE": {"type": int, "max_tokens": 2}})


def test_typed_holes(llm):
    @dataclasses.dataclass
    class Person:  # a closed shape: a random tiny model finishes it
        adult: bool

    result = lmql_nb.run_sync('"A number: [N: int]" where len(TOKENS(N)) < 4\n'
                              '"A word: [W: r\'[a-z]+\']" where len(TOKENS(W)) < 3\n'
                              '"[P: Person]"', Person=Person)
    assert isinstance(result.variables["N"], int)
    assert result.variables["W"].isalpha() or result.variables["W"] == ""
    person = result.variables["P"]
    assert isinstance(person, Person)
    check_trace(llm, result.trace, {"N": {"type": int, "max_tokens": 3},
                                    "W": {"regex": "[a-z]+", "max_tokens": 2},
                                    "P": {"json_schema": {
                                        "properties": {"adult": {"title": "Adult",
                                                                 "type": "boolean"}},
                                        "required": ["adult"], "title": "Person",
                                        "type": "object", "additionalProperties": False}}})


def test_standalone_one_liners(llm, tiny_gpt2_path):
    result = lmql_nb.run_sync(f'argmax "What is the capital of France? [ANSWER]" '
                              f'from "local:{tiny_gpt2_path}" where len(TOKENS(ANSWER)) < 4')
    assert result.variables["ANSWER"] == llm.generate_sync(
        "What is the capital of France? ", max_tokens=3, cache=False)
    result = lmql_nb.run_sync('argmax "What is the capital of France? [ANSWER]" \\\n'
                              '    where len(TOKENS(ANSWER)) < 3')
    assert result.variables["ANSWER"] == llm.generate_sync(
        "What is the capital of France? ", max_tokens=2, cache=False)


def test_while_loop_on_hole_value(llm):
    result = lmql_nb.run_sync('''
tries = 0
"Q: What is 2x2? [ANSWER: int]" where len(TOKENS(ANSWER)) < 2
while ANSWER != 4 and tries < 2:
    tries += 1
    "Incorrect, try again: [ANSWER: int]" where len(TOKENS(ANSWER)) < 2
return tries, ANSWER
''')
    tries, answer = result
    assert isinstance(answer, int) and 0 <= tries <= 2


# -- decoders ---------------------------------------------------------------------------------

BRANCHING = '''
"A[X]" where len(TOKENS(X)) < 3
if len(X) > 1:
    "B[Y]" where len(TOKENS(Y)) < 3
else:
    "C[Y]" where len(TOKENS(Y)) < 3
'''


def test_beam_ranks_whole_programs_by_total_logprob(llm):
    results = lmql_nb.run_sync(BRANCHING, decoder="beam", n=3)
    assert len(results) == 3
    totals = []
    for result in results:
        holes = {s.name: s for s in result.trace.segments if isinstance(s, HoleSegment)}
        x, y = holes["X"].text, holes["Y"].text
        assert result.prompt == "A" + x + ("B" if len(x) > 1 else "C") + y
        # the program's total, recomputed by a full forward pass over each hole's tokens
        total = 0.0
        prefix = ""
        for segment in result.trace.segments:
            if isinstance(segment, HoleSegment) and segment.tokens:
                ids = [t.token_id for t in segment.tokens]
                context = llm.get_tokenizer().encode_prompt(prefix)
                total += sum(aio.run_sync(llm.backend.score_ids, context, [ids], [len(ids)],
                                          False)[0])
            prefix += segment.text
        assert result.trace.logprob == pytest.approx(total, abs=1e-3)
        totals.append(result.trace.logprob)
    assert totals == sorted(totals, reverse=True)
    greedy = lmql_nb.run_sync(BRANCHING)
    assert totals[0] >= greedy.trace.logprob - 1e-6


def test_beam_of_one_hole_is_generates_beam(llm):
    results = lmql_nb.run_sync('"Hello[X]" where len(TOKENS(X)) < 4', decoder="beam", n=2)
    expected = llm.generate_sync("Hello", max_tokens=3, decoder="beam", n=2, cache=False)
    assert [r.variables["X"] for r in results] == expected


def test_sample_runs_n_independent_executions(llm):
    program = '"A[X]" where len(TOKENS(X)) < 5\n"B[Y]" where len(TOKENS(Y)) < 5'
    results = lmql_nb.run_sync(program, decoder="sample", n=3, seed=7)
    assert len(results) == 3
    again = lmql_nb.run_sync(program, decoder="sample", n=3, seed=7)
    assert [r.prompt for r in results] == [r.prompt for r in again]  # seeded: reproducible
    assert len({r.prompt for r in results}) > 1  # independent executions
    # a non-zero temperature without a decoder samples, as in LMQL
    assert isinstance(lmql_nb.run_sync(program, temperature=0.9, n=2), list)


def test_events_stream_the_trace(llm):
    events = []
    result = lmql_nb.run_sync(SENTIMENT, on_event=lambda i, e: events.append((i, e)))
    assert isinstance(events[0][1], SequenceStarted)
    assert isinstance(events[-1][1], SequenceFinished) and events[-1][1].trace == result.trace
    streamed = [e.token for _, e in events if isinstance(e, TokenAppended)]
    finished = [e.segment for _, e in events if isinstance(e, HoleFinished)]
    assert streamed == [t for s in finished for t in s.tokens]
    text = "".join(e.text for _, e in events if isinstance(e, TextAppended))
    assert text + "".join(s.text for s in finished) != ""
    assert Trace.from_data(result.trace.to_data()) == result.trace


# -- the Python entry points -------------------------------------------------------------------

GLOBAL_TOPIC = "the sea"


def test_query_decorator_sync_async_and_scope(llm):
    suffix = "!"  # noqa: F841 (read by the query program)

    @lmql_nb.query
    def chain(question):
        '''lmql
        "Q: {question} {GLOBAL_TOPIC}{suffix}\n"
        "A: Let's think step by step.\n[REASONING]" where len(TOKENS(REASONING)) < 4
        return REASONING.upper()
        '''

    value = chain("Why?")
    assert value == llm.generate_sync("Q: Why? the sea!\nA: Let's think step by step.\n",
                                      max_tokens=3, cache=False).upper()

    @lmql_nb.query(decoder="sample", n=2, seed=1)
    async def sampled():
        '''lmql
        "Q:[A]" where len(TOKENS(A)) < 3
        '''

    import asyncio

    results = asyncio.run(sampled())
    assert len(results) == 2 and all(isinstance(r, lmql_nb.LMQLResult) for r in results)
    assert len(asyncio.run(sampled(n=1)).prompt) > 2  # call options win


def test_query_string_run_and_F(llm):
    cot = lmql_nb.query('"Q: {question}\\n[ANSWER]" where len(TOKENS(ANSWER)) < 3',
                        is_async=False)
    result = cot("What is 2x3?")
    assert result.variables["ANSWER"] == llm.generate_sync("Q: What is 2x3?\n", max_tokens=2,
                                                           cache=False)
    import asyncio

    assert asyncio.run(lmql_nb.run('"Q: {question}\\n[ANSWER]" where len(TOKENS(ANSWER)) < 3',
                                   question="What is 2x3?")).prompt == result.prompt
    summarize = lmql_nb.F("Summarize {data}: [SUMMARY]", "len(TOKENS(SUMMARY)) < 3")
    assert summarize(data="LMQL") == llm.generate_sync("Summarize LMQL: ", max_tokens=2,
                                                       cache=False)
    two = lmql_nb.F("{a}[X] and [Y]", "len(TOKENS(X)) < 2 and len(TOKENS(Y)) < 2")
    assert set(two("z")) == {"X", "Y"}


# -- errors -------------------------------------------------------------------------------------

def test_syntax_errors_point_into_the_docstring():
    with pytest.raises(SyntaxError) as caught:
        @lmql_nb.query
        def broken():
            '''lmql
            "fine [X]"
            if X = 3:
                "bad"
            '''
    error = caught.value
    assert error.filename == __file__
    assert error.lineno == next(i for i, line in enumerate(open(__file__), 1)
                                if line.strip() == "if X = 3:")
    assert error.text.strip() == "if X = 3:"
    assert error.text[error.offset - 1:].startswith("X = 3")


@pytest.mark.parametrize("source, error, message", [
    ('"Hello [X]" where STOPS_AT(Y, ".")', ValueError, "Y, which is not a hole of this prompt"),
    ('argmax\n    "Hello [X]"\ndistribution\n    Y in ["a"]', ValueError, "no hole \\[Y\\]"),
    ('"Hello [X]" where X > 3', ValueError, "cannot express"),
    ('"Hello [@ X]"', SyntaxError, "a decorator is @name"),
    ('incontext(n=2)\n"Hello [X]"', SyntaxError, "decoder 'incontext' is not supported"),
    ('f"Hello [X]"', SyntaxError, "drop the f prefix"),
    ('"Hello [X"', SyntaxError, "unclosed"),
    ('"Hello {x"', SyntaxError, "unclosed"),
    ('"Hello [X]" where REGEX(X, "[a-")', ValueError, r"constraints of \[X\].*invalid regex"),
    ('"Hello [X]" where STOPS_AT(X, "a") and STOPS_BEFORE(X, "a")', ValueError, "both"),
])
def test_program_errors_before_any_generation(source, error, message):
    with pytest.raises(error, match=message):
        lmql_nb.query(source)


def test_option_errors_before_any_generation():
    program = lmql_nb.query('"Hello [X]"', is_async=False)
    with pytest.raises(TypeError, match="certificate= takes True"):
        program(certificate=3)
    with pytest.raises(TypeError, match="unknown keyword 'colour'"):
        lmql_nb.query('"Hello [X]"', colour=1)
    with pytest.raises(ValueError, match="n=2 needs a decoder that gives several sequences"):
        program(decoder="argmax", n=2)
    with pytest.raises(ValueError, match="unknown decoder"):
        program(decoder="greedy")


def test_syntax_error_line_in_a_string_program():
    with pytest.raises(SyntaxError) as caught:
        lmql_nb.query('"a [X]"\n\nfor i in range(3)\n    "b"')
    assert caught.value.lineno == 3


def test_model_text_is_never_code(llm):
    # whatever the model writes into a hole stays a str, even when it looks like code
    result = lmql_nb.run_sync('"{payload}[X]" where len(TOKENS(X)) < 3\nreturn type(X).__name__',
                              payload="{__import__('os').system('false')}")
    assert result == "str"
    assert math.isfinite(0.0)


@pytest.mark.parametrize("source, message", [
    # a chat program on a model without a chat template
    ('"{:user} Hello"\n"{:assistant} [X]"', "chat_template="),
])
def test_unsupported_features_are_named(llm, source, message):
    with pytest.raises((SyntaxError, ValueError), match=message):
        lmql_nb.run_sync(source)


def test_models_from_clause_option_and_default(llm, tiny_llama_path):
    other = lmql_nb.model(f"local:{tiny_llama_path}")
    program = '"Hi[X]" where len(TOKENS(X)) < 3'
    expected = other.generate_sync("Hi", max_tokens=2, cache=False)
    # an LLM object in the from clause (a name of the defining scope), as model=, as default
    from_clause = lmql_nb.query(f"argmax\n    {program}\nfrom\n    other", is_async=False)
    assert from_clause().variables["X"] == expected
    assert lmql_nb.run_sync(program, model=other).variables["X"] == expected
    standalone = f'argmax\n    {program}\nfrom\n    lmql.model("local:{tiny_llama_path}")'
    assert lmql_nb.run_sync(standalone).variables["X"] == expected
    assert lmql_nb.run_sync(program).variables["X"] == llm.generate_sync("Hi", max_tokens=2,
                                                                         cache=False)
    assert from_clause(model=llm).variables["X"] != expected or expected == llm.generate_sync(
        "Hi", max_tokens=2, cache=False)  # the call's model wins over the from clause


def test_beam_replay_keeps_print_quiet(llm, capsys):
    results = lmql_nb.run_sync('print("start")\n"A[X]" where len(TOKENS(X)) < 3\n'
                               'print("after", len(X))\n"B[Y]" where len(TOKENS(Y)) < 3',
                               decoder="beam", n=2)
    printed = capsys.readouterr().out.splitlines()
    assert printed.count("start") == 1  # forked states replay the program silently
    assert len(results) == 2


def test_runs_under_trio(llm):
    trio = dev_package("trio")

    async def main():
        return await lmql_nb.run('"A[X]" where len(TOKENS(X)) < 3', decoder="sample", n=2,
                                 seed=3)

    results = trio.run(main)
    assert len(results) == 2


def test_syntax_error_column_in_an_indented_string_program():
    with pytest.raises(SyntaxError) as caught:
        lmql_nb.query('''
        "a [X]"
        if X = 3:
            "b"
        ''')
    assert caught.value.lineno == 3
    assert caught.value.text[caught.value.offset - 1:].startswith("X = 3")


def test_a_program_in_a_namespace(llm):
    from lmql_nb.query.functions import query_in_namespace

    namespace = {"topic": "cats"}
    cell = query_in_namespace('"About {topic}:[X]" where len(TOKENS(X)) < 3', namespace)
    import asyncio

    (outcome,) = asyncio.run(cell.outcomes())
    assert outcome.result.prompt.startswith("About cats:")
    namespace["topic"] = "dogs"  # read when called, not when compiled
    assert asyncio.run(cell.run()).prompt.startswith("About dogs:")
    with pytest.raises(SyntaxError) as caught:
        query_in_namespace('"a"\nif x = 1:\n    "b"', namespace, filename="<cell 3>", first_line=2)
    assert (caught.value.filename, caught.value.lineno) == ("<cell 3>", 3)


@pytest.mark.parametrize("options", [{}, dict(decoder="sample", n=2), dict(decoder="beam", n=2)])
def test_a_failing_program_raises_its_own_error(llm, options):
    with pytest.raises(ZeroDivisionError):
        lmql_nb.run_sync('"A[X]" where len(TOKENS(X)) < 3\nx = 1 / 0', **options)


def test_a_pydantic_typed_hole(llm):
    from pydantic import BaseModel

    class Flag(BaseModel):
        ok: bool

    result = lmql_nb.run_sync('"Is it?[F: Flag]"', Flag=Flag)
    assert isinstance(result.variables["F"], Flag)
    assert result.variables["F"] == Flag.model_validate_json(result.prompt[len("Is it?"):])
    check_trace(llm, result.trace, {"F": {"json_schema": {
        "properties": {"ok": {"title": "Ok", "type": "boolean"}}, "required": ["ok"],
        "title": "Flag", "type": "object", "additionalProperties": False}}})


# -- LMQL's Python API and decoding documentation, as written there ---------------------------

def test_python_api_documentation_examples(llm):
    import re

    a = 12  # noqa: F841 (read by the query program)

    @lmql_nb.query
    def query():
        r'''lmql
        # access 'a' from the global namespace
        "Tell me a fun fact about {a}: [FACT]" where len(TOKENS(FACT)) < 4
        # use imported 're' module
        return re.sub(r'\d+', '[NUMBER]', FACT)
        '''

    fact = llm.generate_sync("Tell me a fun fact about 12: ", max_tokens=3, cache=False)
    assert query() == re.sub(r"\d+", "[NUMBER]", fact)

    chain_of_thought = lmql_nb.query("""
        "Q: {question}\\n"
        "A: Let's think step by step.\\n"
        "[ANSWER]" where len(TOKENS(ANSWER)) < 3
    """, is_async=False)
    result = chain_of_thought("What is 2x3?")
    assert result.prompt == "Q: What is 2x3?\nA: Let's think step by step.\n" + \
        result.variables["ANSWER"]

    number = lmql_nb.F("A random number: [JOKE: int]", "len(TOKENS(JOKE)) < 3")
    numbers = number(decoder="sample", n=2)
    assert len(numbers) == 2 and all(isinstance(n, int) for n in numbers)

    joke = lmql_nb.query("""
        "Q: Tell me a joke about plants\\n"
        "A: [JOKE]" where len(TOKENS(JOKE)) < 3
    """, is_async=False)
    assert set(joke().variables) == {"JOKE"}


def test_decoding_documentation_example(llm):
    @lmql_nb.query(decoder="sample", temperature=1.8, seed=5)
    def tell_a_joke():
        '''lmql
        """A list good dad joke. A indicates the punchline:
        Q:[JOKE]
        A:[PUNCHLINE]""" where STOPS_AT(JOKE, "?") and  STOPS_AT(PUNCHLINE, "\n") and len(TOKENS(JOKE)) < 5 and len(TOKENS(PUNCHLINE)) < 5
        '''

    sampled = tell_a_joke()  # the decoder given to @query
    assert isinstance(sampled, lmql_nb.LMQLResult)
    beams = tell_a_joke(decoder="beam", n=2)  # the call's decoder wins
    assert len(beams) == 2
    assert beams[0].trace.logprob >= beams[1].trace.logprob
    for result in beams:
        assert result.prompt.startswith("A list good dad joke. A indicates the punchline:\nQ:")


def test_beam_events_describe_rows(llm):
    from lmql_nb.query.trace import SequenceDropped

    events = []
    results = lmql_nb.run_sync(BRANCHING, decoder="beam", n=2,
                               on_event=lambda i, e: events.append((i, e)))
    rows: dict[int, Trace] = {}
    dropped: set[int] = set()
    for index, event in events:
        if isinstance(event, SequenceStarted):
            assert event.parent is None or event.parent in rows
            rows[index] = event.trace.copy()
            dropped.discard(index)
        elif isinstance(event, SequenceDropped):
            dropped.add(index)
        elif isinstance(event, SequenceFinished):
            rows[index] = event.trace
    assert max(rows) < 2 * 2  # slots are reused: rows stay few
    finished = [rows[i].prompt for i in rows if i not in dropped]
    assert sorted(finished) == sorted(r.prompt for r in results)


def test_beam_names_a_program_that_replays_differently(llm):
    # one candidate for X, two for Z: the second Z state is forked, and its replay sees
    # `calls` grown, so it heads for Y where its parent had reached Z
    program = ('"A[X]" where X in [" a"]\ncalls.append(1)\n'
               'if len(calls) > 1:\n    "B[Y]" where len(TOKENS(Y)) < 3\n'
               'else:\n    "B[Z]" where len(TOKENS(Z)) < 3')
    with pytest.raises(RuntimeError, match="must take the same path"):
        lmql_nb.run_sync(program, calls=[], decoder="beam", n=2)


def test_constraints_documentation_examples(llm):
    things = lmql_nb.run_sync('''
sample(temperature=0.8, seed=2)
   "A list of things not to forget when going to the sea (not travelling): \\n"
   "- Sunglasses \\n"
   for i in range(2):
      "- [THING] \\n"
where
   THING in set(["Volleyball", "Sunscreen", "Bathing Suit"])
''')
    picked = [s.text for s in things.trace.holes()]
    assert len(picked) == 2 and set(picked) <= {"Volleyball", "Sunscreen", "Bathing Suit"}

    hello = lmql_nb.run_sync('argmax\n   "Hello [NAME]"\nwhere\n    len(NAME) < 10')
    assert len(hello.variables["NAME"]) < 10
    check_trace(llm, hello.trace, {"NAME": {"where": "len(RESPONSE) < 10"}})

    date = lmql_nb.run_sync('''"It's the last day of June so today is [DATE]" \\
   where REGEX(DATE, r"[0-9]{2}/[0-9]{2}")''')
    import re

    assert re.fullmatch(r"[0-9]{2}/[0-9]{2}", date.variables["DATE"])
    check_trace(llm, date.trace, {"DATE": {"regex": r"[0-9]{2}/[0-9]{2}"}})


def test_query_builder(llm, tiny_gpt2_path):
    query = (lmql_nb.QueryBuilder()
             .set_decoder("argmax")
             .set_prompt("What is the capital of France? [ANSWER]")
             .set_model(f"local:{tiny_gpt2_path}")
             .set_where("len(TOKENS(ANSWER)) < 4")
             .set_where('STOPS_AT(ANSWER, ".")')
             .set_distribution("ANSWER", '[" Paris", " London"]')
             .build())
    with pytest.raises(ValueError, match="distribution variable"):
        query.run_sync()  # a distribution variable takes no where constraints
    query = (lmql_nb.QueryBuilder().set_prompt("Q: [[x]] [ANSWER]")
             .set_where("len(TOKENS(ANSWER)) < 3").build())
    result = query.run_sync()
    assert result.prompt == "Q: [x] " + llm.generate_sync("Q: [x] ", max_tokens=2, cache=False)
    assert (lmql_nb.QueryBuilder().set_prompt("Which? [A]")
            .set_distribution("A", '[" a", " b"]').build().run_sync()
            .variables["A"]) in (" a", " b")
