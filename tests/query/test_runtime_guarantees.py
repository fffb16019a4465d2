"""Issue 25: query programs never read a stale variable, never hang, and fail clearly.

Where a hang is how a defect shows, the check runs in a new Python process with a hard
time limit (`run_script`): the process not finishing in time is the failure.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import lmql_nb
from lmql_nb.query.functions import QueryArgumentWarning

ROOT = Path(__file__).resolve().parents[2]


def run_script(code: str, timeout: float, *args: str) -> str:
    """Run `code` in a new Python process (this checkout first on the path); its stdout.
    Not finishing within `timeout` seconds fails the test (what a hang looks like)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"hung: no end within {timeout} s; output so far:\n{error.stdout}\n"
                    f"{error.stderr}")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def llm(tiny_gpt2_path):
    model = lmql_nb.model(f"local:{tiny_gpt2_path}")
    lmql_nb.set_default_model(model)
    yield model
    lmql_nb.api._default = None


# -- 1. variables are read where and when the program runs ------------------------------

def test_run_reads_the_callers_variables_at_each_call():
    def loop():
        return [lmql_nb.run_sync('return "city=" + city') for city in ["Paris", "Rome", "Oslo"]]

    async def async_loop():
        return [await lmql_nb.run('return "city=" + city') for city in ["Paris", "Rome", "Oslo"]]

    assert loop() == ["city=Paris", "city=Rome", "city=Oslo"]
    assert asyncio.run(async_loop()) == ["city=Paris", "city=Rome", "city=Oslo"]


def test_a_hole_prompt_reads_the_callers_variable_at_each_call(llm):
    def ask(country):
        return lmql_nb.run_sync('"Country: {country}. [X]" where len(TOKENS(X)) < 2')

    assert ask("France").prompt.startswith("Country: France. ")
    assert ask("Germany").prompt.startswith("Country: Germany. ")


def test_a_query_defined_in_a_function_reads_its_variables_as_a_closure_does():
    def make():
        suffix = "a"

        @lmql_nb.query
        def decorated():
            '''lmql
            return "s=" + suffix
            '''

        from_string = lmql_nb.query('return "s=" + suffix', is_async=False)

        def closure():
            return "s=" + suffix

        first = (decorated(), from_string(), closure())
        suffix = "b"
        second = (decorated(), from_string(), closure())
        return first, second, (decorated, from_string, closure)

    first, second, functions = make()
    assert first == ("s=a",) * 3
    assert second == ("s=b",) * 3  # what the closure sees, the queries see
    assert tuple(f() for f in functions) == ("s=b",) * 3  # after make() returned, too


# -- 4. the compile cache is bounded and holds no caller values -------------------------

def test_memory_after_1000_distinct_programs_is_bounded():
    out = run_script("""
        import gc, tracemalloc
        import lmql_nb

        def call(i):
            ballast = bytearray(200_000)  # a local the program could capture
            return lmql_nb.run_sync(f'return {i} + len(ballast)')

        call(-1)  # imports done
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            assert call(i) == i + 200_000
        gc.collect()
        print((tracemalloc.get_traced_memory()[0] - before) / 1e6)
    """, timeout=300)
    grown_mb = float(out.split()[-1])
    # 1,000 ballasts are 200 MB; 256 cached programs (code only) a few MB
    assert grown_mb < 16, f"{grown_mb:.1f} MB kept after 1,000 distinct programs"


# -- 5. F's constraints are one where expression ----------------------------------------

@pytest.mark.parametrize("constraints", [
    'len(TOKENS(X)) < 3\nprint("ran")',
    'len(TOKENS(X)) < 3\nfrom print("ran") or "x"',
    'len(TOKENS(X)) < 3 distribution X in ["a"]',
    "X in distribution",
    "",
    "   ",
])
def test_F_refuses_constraints_that_are_not_one_where_expression(constraints, capfd):
    with pytest.raises(ValueError, match="constraints"):
        lmql_nb.F("Say [X]", constraints)
    assert "ran" not in capfd.readouterr().out


def test_F_constraints_still_constrain(llm):
    two = lmql_nb.F("Say [X]", "len(TOKENS(X)) < 3")
    expected = llm.generate_sync("Say ", max_tokens=2)
    assert two() == expected


# -- 6. malformed programs fail before anything runs, naming the line and the hole ------

@pytest.mark.parametrize("source, error, words", [
    ('"Hi [X]" where', SyntaxError, "where clause is empty"),
    ('"Hi [X]" where distribution X in ["a"]', SyntaxError, "where clause is empty"),
    ('"Hi [X]" distribution X in 5', ValueError, "distribution X"),
    ('"Hi [X]" distribution X in []', ValueError, "distribution X"),
    ('print("ran")\n"A [A]" where len(TOKENS(A)) < 2\n"B [N]" where len(TOKENS(N)) < -3',
     ValueError, "len(TOKENS(N)) < -3"),
])
def test_malformed_programs_fail_before_running(source, error, words, capfd):
    with pytest.raises(error) as raised:
        lmql_nb.query(source)
    message = str(raised.value)
    assert words in message
    line = source.count("\n") + 1
    if error is SyntaxError:
        assert raised.value.lineno == line
    else:
        assert f"line {line}" in message
    assert "ran" not in capfd.readouterr().out


def test_F_with_empty_constraints_is_a_value_error():
    with pytest.raises(ValueError, match="constraints is empty"):
        lmql_nb.F("Hi [X]", "")


def test_distribution_values_that_are_no_list_at_run_time_name_the_hole(llm):
    with pytest.raises(TypeError, match=r"distribution X in .*int 5.*line 2"):
        lmql_nb.run_sync('values = 5\n"Pick [X]" distribution X in values')


# -- 7. keywords named like options -----------------------------------------------------

@pytest.mark.parametrize("name", ["n", "seed", "model", "cache", "verbose", "chunksize"])
def test_a_keyword_the_program_reads_is_its_variable(name):
    with pytest.warns(QueryArgumentWarning, match=f"{name}= was taken as the program's variable"):
        assert lmql_nb.run_sync(f"return {name}", **{name: 3}) == 3


def test_a_def_querys_parameter_named_like_an_option_is_its_argument():
    @lmql_nb.query
    def count(n):
        '''lmql
        return n * 2
        '''

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a declared parameter is not ambiguous
        assert count(n=4) == 8
        assert count(4) == 8


def test_options_the_program_does_not_read_are_still_options(llm):
    results = lmql_nb.run_sync('"A[X]" where len(TOKENS(X)) < 2', decoder="sample", n=2, seed=1)
    assert len(results) == 2


# -- 2. a loop over cached holes gives control back, and ends when it makes no progress --

NO_PROGRESS = """
    import asyncio, sys
    import lmql_nb
    from lmql_nb.query import runtime

    llm = lmql_nb.model("local:" + sys.argv[1])
    lmql_nb.set_default_model(llm)
    first = llm.generate_sync("The capital of France is", max_tokens=1)
    # the hole stops before the model's next text: it adds nothing, every time
    PROGRAM = ('"The capital of France is"\\nwhile True:\\n'
               f'    "[X]" where STOPS_BEFORE(X, {first!r})')
"""


def test_a_loop_over_cached_holes_gives_control_back_and_can_be_timed_out(tiny_gpt2_path):
    out = run_script(NO_PROGRESS + """
    runtime.STALL_LIMIT = 10**9  # as if it never ended by itself
    ticks = 0

    async def ticker():
        global ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main():
        task = asyncio.ensure_future(ticker())
        try:
            await asyncio.wait_for(lmql_nb.run(PROGRAM), 3)
        except asyncio.TimeoutError:
            print("timed out", ticks > 100)
        task.cancel()

    asyncio.run(main())
    print(repr(llm.generate_sync("Hello", max_tokens=2)))  # still usable
    """, 120, str(tiny_gpt2_path))
    lines = out.splitlines()
    assert lines[0] == "timed out True"
    assert len(lines) == 2


def test_a_program_that_makes_no_progress_ends_with_a_clear_error(tiny_gpt2_path):
    out = run_script(NO_PROGRESS + """
    try:
        lmql_nb.run_sync(PROGRAM)
    except RuntimeError as error:
        print(error)
    """, 120, str(tiny_gpt2_path))
    assert "makes no progress: [X] (<lmql>, line 3) was asked 101 times" in out


# -- 3. interrupting, cancelling, timing out: lmql_nb stays usable ----------------------

INTERRUPTS = """
    import asyncio, os, signal, sys, threading, time
    import lmql_nb

    llm = lmql_nb.model("local:" + sys.argv[1])
    lmql_nb.set_default_model(llm)
    llm.generate_sync("warm", max_tokens=1)
    first = llm.generate_sync("The capital of France is", max_tokens=1)
    LOOP = ('"The capital of France is"\\nwhile True:\\n'
            f'    "[X]" where STOPS_BEFORE(X, {first!r})')
    # (program, options): with and without holes, cached and not
    PROGRAMS = {
        "text loop": ('while True:\\n    "x"', {}),
        "python loop": ('i = 0\\nwhile True:\\n    i += 1', {}),
        "uncached holes": (LOOP, {"cache": False}),
        "cached holes": (LOOP, {"cache": True}),
        "one long statement": ('x = sum(i for i in range(10**12))', {}),  # last: never yields
    }
    BIG = {"max_len": 10**9}

    def usable(label):
        start = time.monotonic()
        llm.generate_sync("Hello", max_tokens=2, cache=False)
        print(label, "usable", time.monotonic() - start < 60, flush=True)  # not hung
"""


def test_ctrl_c_on_any_program_leaves_lmql_nb_usable(tiny_gpt2_path):
    out = run_script(INTERRUPTS + """
    from lmql_nb.query import runtime
    runtime.STALL_LIMIT = 10**9
    for label, (program, options) in PROGRAMS.items():
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            lmql_nb.run_sync(program, **BIG, **options)
            print(label, "finished?")
        except KeyboardInterrupt:
            print(label, "interrupted", flush=True)
        usable(label)
    """, 240, str(tiny_gpt2_path))
    for label in ("text loop", "python loop", "uncached holes", "cached holes",
                  "one long statement"):
        assert f"{label} interrupted\n{label} usable True\n" in out


@pytest.mark.parametrize("how", ["wait_for", "cancel"])
def test_timing_out_or_cancelling_any_program_leaves_lmql_nb_usable(tiny_gpt2_path, how):
    out = run_script(INTERRUPTS + """
    from lmql_nb.query import runtime
    runtime.STALL_LIMIT = 10**9
    how = sys.argv[2]

    async def stop(program, options):
        if how == "wait_for":
            await asyncio.wait_for(lmql_nb.run(program, **BIG, **options), 1.0)
        task = asyncio.ensure_future(lmql_nb.run(program, **BIG, **options))
        await asyncio.sleep(1.0)
        task.cancel()
        await task

    for label, (program, options) in PROGRAMS.items():
        if label == "one long statement":
            continue  # Python that never yields blocks the caller's own loop: nothing can
        try:
            asyncio.run(asyncio.wait_for(stop(program, options), 30))
        except (asyncio.TimeoutError, asyncio.CancelledError):
            print(label, "stopped", flush=True)
        usable(label)
    """, 240, str(tiny_gpt2_path), how)
    for label in ("text loop", "python loop", "uncached holes", "cached holes"):
        assert f"{label} stopped\n{label} usable True\n" in out


def test_a_hole_free_loop_ends_at_max_len(tiny_gpt2_path):
    out = run_script("""
    import sys
    import lmql_nb
    lmql_nb.set_default_model(lmql_nb.model("local:" + sys.argv[1]))
    try:
        lmql_nb.run_sync('while True:\\n    "x "', max_len=300)
    except ValueError as error:
        print(error)
    """, 120, str(tiny_gpt2_path))
    assert "beyond max_len=300" in out


# -- 9. unbounded holes: a documented cap for INT, and bounds that say they ended a hole --

def test_an_unbounded_int_hole_stops_at_the_documented_cap(llm):
    from lmql_nb.query.runtime import INT_MAX_CHARS

    prompt = "Numbers: "
    unbounded = llm.generate_sync(prompt, type=int)  # LMQL's semantics: max_len alone
    assert len(unbounded) > INT_MAX_CHARS  # this model writes long numbers
    capped = llm.generate_sync(prompt, where=f"INT(RESPONSE) and len(RESPONSE) <= "
                                             f"{INT_MAX_CHARS}")
    for program in ('"Numbers: [N]" where INT(N)', '"Numbers: [N: int]"'):
        result = lmql_nb.run_sync(program)
        assert str(result.variables["N"]) == capped
        assert result.limits == {"N": f"INT_MAX_CHARS={INT_MAX_CHARS}"}
    # a length bound of its own is kept as written
    bounded = lmql_nb.run_sync('"Numbers: [N]" where INT(N) and len(TOKENS(N)) < 40')
    assert str(bounded.variables["N"]) == llm.generate_sync(prompt, type=int, max_tokens=39)


def test_a_hole_ended_by_max_len_says_so_in_the_result_and_the_trace_view(llm):
    from lmql_nb.notebook.views import trace_view
    from lmql_nb.notebook.views.trace_view import TraceView

    prompt = "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 123 "
    used = len(llm.get_tokenizer().encode_prompt(prompt))
    expected = llm.generate_sync(prompt, max_tokens=5, return_details=True)
    assert expected.finish_reason == "length"  # five tokens do not end this text
    result = lmql_nb.run_sync(f'"{prompt}[X]"', max_len=used + 5)
    assert result.variables["X"] == expected.text
    assert result.limits == {"X": f"max_len={used + 5}"}
    [hole] = [s for s in result.trace.segments if getattr(s, "name", "") == "X"]
    assert hole.limit == f"max_len={used + 5}"
    assert f"ended at max_len={used + 5}" in TraceView(result).static_html()
    columns = trace_view._columns([result.trace], [False])  # what the live view draws
    assert f"ended at max_len={used + 5}" in columns["seg_detail"]
    # a hole its own constraint ended says nothing
    short = lmql_nb.run_sync(f'"{prompt}[X]" where len(TOKENS(X)) < 3')
    assert short.limits == {}


# -- 10. beam(n) larger than what exists says so ----------------------------------------

def test_a_beam_wider_than_what_exists_says_so(llm):
    from lmql_nb.query.functions import BeamWidthWarning

    with pytest.warns(BeamWidthWarning, match=r"beam\(n=100000\) gave \d+ results"):
        results = lmql_nb.run_sync('"A[X]" where X in [" b", " c", " d"]', decoder="beam",
                                   n=100000)
    assert sorted(r.variables["X"] for r in results) == [" b", " c", " d"]
