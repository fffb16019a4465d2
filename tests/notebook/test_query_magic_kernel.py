"""`%%lmql` in a real kernel (nbclient), on the tiny Llama.

Each hole's expected value is `generate` on the prompt built so far, and a distribution's
is `score` of its values, computed in this process: a magic that runs the program wrong,
mangles the prompt, reads the wrong variables or stores the wrong thing fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nb_helpers import WIDGET_MIME, display_data, error, execute_cells, stdout

CELLS = {
    "load": "%load_ext lmql_nb",
    "config": "%config LmqlMagics.model = {model!r}\n"
              "import lmql_nb\n_ = lmql_nb.model({model!r}).generate_sync('x', max_tokens=1)",
    "vars": 'import json\ncountry = "France"\nANSWER = "before"',
    "two_holes": '%%lmql -o r1\n'
                 '"Q: The capital of {country}?\\nA:[ANSWER]" where len(TOKENS(ANSWER)) < 5\n'
                 '"\\nWhy:[WHY]" where STOPS_AT(WHY, ".") and len(TOKENS(WHY)) < 7\n',
    "print_two": "print(json.dumps([ANSWER, WHY, r1.prompt, r1.variables['ANSWER']]))",
    "distribution": '%%lmql -o r2\n'
                    'argmax\n'
                    '    "Numbers: 1 2[N]"\n'
                    'distribution\n'
                    '    N in [" 3", " 4", " x"]\n',
    "print_distribution": "print(json.dumps([N, r2.variables['P(N)']]))",
    "sample": "%%lmql --decoder sample -n 2 --seed 1 -o r3\n"
              '"Once upon[STORY]" where len(TOKENS(STORY)) < 4\n',
    "print_sample": "print(json.dumps([type(r3).__name__, len(r3), [r.prompt[:9] for r in r3]]))",
    "searches": "%%lmql --decoder beam_sample -n 2 --temperature 1.5 --seed 1 -o r5\n"
                '"Once upon[STORY]" where len(TOKENS(STORY)) < 4\n',
    "best_k": "%%lmql -o r6\nbest_k(k=2, n=4, temperature=1.5, seed=2)\n"
              '"Once upon[STORY]" where len(TOKENS(STORY)) < 4\n',
    "print_searches": "print(json.dumps([[r.prompt for r in r5], [r.prompt for r in r6]]))",
    "returns": '%%lmql -o r4\n'
               '"Count: 1[X]" where len(TOKENS(X)) < 3\n'
               'return X.upper()\n',
    "print_returns": "print(json.dumps([r4, X]))",
    "unknown_name": '%%lmql\n"{nowhere} [A]"\n',
    "syntax": '%%lmql\n"fine [A]"\n"broken [B" where\n',
    "bad_decoder": '%%lmql --decoder greedy\n"x [A]"\n',
    "bad_out": '%%lmql -o 1x\n"x [A]"\n',
}


@pytest.fixture(scope="module")
def run(tiny_llama_path, tmp_path_factory):
    model = f"local:{tiny_llama_path}"
    sources = [CELLS[name].format(model=model) if name == "config" else CELLS[name]
               for name in CELLS]
    notebook = execute_cells(sources, tmp_path_factory.mktemp("query-magic"))
    return dict(zip(CELLS, notebook.cells))


def test_setup_cells_run_without_error(run):
    for name in ("load", "config", "vars"):
        assert error(run[name]) is None, (name, error(run[name]))


def test_holes_match_generate_and_become_notebook_variables(run, tiny_llm):
    prompt = "Q: The capital of France?\nA:"
    answer = tiny_llm.generate_sync(prompt, max_tokens=4)
    prompt += answer + "\nWhy:"
    why = tiny_llm.generate_sync(prompt, max_tokens=6, stops_at=["."])
    prompt += why
    assert error(run["two_holes"]) is None, error(run["two_holes"])
    [data] = display_data(run["two_holes"])
    assert WIDGET_MIME in data
    assert data["text/plain"] == prompt  # the finished trace, as text
    assert json.loads(stdout(run["print_two"])) == [answer, why, prompt, answer]


def test_distribution_matches_score(run, tiny_llm):
    values = [" 3", " 4", " x"]
    scores = tiny_llm.score_sync("Numbers: 1 2", values)
    sums = np.array([float(np.sum(s)) for s in scores.token_scores])
    probs = np.exp(sums - sums.max())
    probs /= probs.sum()
    assert error(run["distribution"]) is None, error(run["distribution"])
    chosen, pairs = json.loads(stdout(run["print_distribution"]))
    assert chosen == values[int(np.argmax(sums))]
    assert [v for v, _ in pairs] == values
    assert [p for _, p in pairs] == pytest.approx(probs.tolist(), abs=1e-6)


def test_sampling_gives_one_result_per_sample(run):
    assert error(run["sample"]) is None, error(run["sample"])
    assert json.loads(stdout(run["print_sample"])) == ["list", 2, ["Once upon"] * 2]


def test_beam_sample_and_best_k_run_from_cells_as_from_python(run, tiny_llm):
    import lmql_nb

    program = '"Once upon[STORY]" where len(TOKENS(STORY)) < 4'
    beam_sample = lmql_nb.run_sync(program, model=tiny_llm, decoder="beam_sample", n=2,
                                   temperature=1.5, seed=1)
    best_k = lmql_nb.run_sync("best_k(k=2, n=4, temperature=1.5, seed=2)\n" + program,
                              model=tiny_llm)
    assert error(run["searches"]) is None, error(run["searches"])
    assert error(run["best_k"]) is None, error(run["best_k"])
    assert json.loads(stdout(run["print_searches"])) == [[r.prompt for r in beam_sample],
                                                         [r.prompt for r in best_k]]


def test_return_value_is_stored_and_holes_still_assigned(run, tiny_llm):
    x = tiny_llm.generate_sync("Count: 1", max_tokens=2)
    assert json.loads(stdout(run["print_returns"])) == [x.upper(), x]


@pytest.mark.parametrize("name, kind, needles", [
    ("unknown_name", "NameError", ["nowhere"]),
    ("bad_decoder", "UsageError", ["--decoder", "greedy", "argmax", "sample", "beam"]),
    ("bad_out", "UsageError", ["-o", "1x", "variable name"]),
])
def test_bad_input_is_a_clear_error(run, name, kind, needles):
    found = error(run[name])
    assert found is not None, f"{name} did not fail"
    ename, message = found
    assert ename == kind, (ename, message)
    for needle in needles:
        assert needle in message, (needle, message)


def test_syntax_error_points_into_the_cell(run):
    [output] = [o for o in run["syntax"].outputs if o.output_type == "error"]
    assert output.ename == "SyntaxError"
    # the cell's line 3, counting the %%lmql line as the notebook does
    assert "(<%%lmql cell>, line 3)" in output.evalue, output.evalue
    assert "'['" in output.evalue  # says what is wrong: the hole's bracket is not closed
    # as IPython shows its own syntax errors: the user's line and a caret, no frames of
    # lmql_nb's code (no "magics", no "raise ... from None" line)
    import re

    shown = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in output.traceback]
    assert shown[0] == '  File "<%%lmql cell>", line 3', shown
    assert shown[1].strip() == '"broken [B" where', shown
    assert set(shown[2].strip()) <= {"^", "~"} and shown[2].strip(), shown
    assert shown[-1].startswith("SyntaxError: ") and len(shown) == 4, shown
    assert not any("lmql_nb" in line or "raise" in line for line in shown), shown


def test_interrupt_keeps_the_trace_and_the_holes_filled_so_far(tiny_llama_path, tiny_llm,
                                                               tmp_path):
    """The program waits after its first hole: the interrupt lands there."""
    import queue
    import time

    from jupyter_client.manager import start_new_kernel

    from lmql_nb.notebook import codec

    expected = tiny_llm.generate_sync("A", max_tokens=2, return_details=True)
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive(f"%load_ext lmql_nb\n%config LmqlMagics.model = "
                                   f"{'local:' + str(tiny_llama_path)!r}", timeout=120)
        msg_id = client.execute('%%lmql\nimport asyncio\n"A[X]" where len(TOKENS(X)) < 3\n'
                                'await asyncio.sleep(120)\n"B[Y]"\n')
        error, last_data, interrupted_at = None, None, None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                msg = client.get_iopub_msg(timeout=5)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and content["data"].get("buffer_paths"):
                last_data = codec.unpack(bytes(msg["buffers"][0]))
                if interrupted_at is None and "X" in last_data["seg_name"] and \
                        len(last_data["text"]) == len(expected.tokens):
                    time.sleep(1)  # the hole is done: the program now waits
                    interrupted_at = time.monotonic()
                    manager.interrupt_kernel()
            if msg["msg_type"] == "error":
                error = (content["ename"], content["evalue"])
            if msg["msg_type"] == "status" and content["execution_state"] == "idle":
                break
        assert interrupted_at is not None, "the hole was never shown"
        assert time.monotonic() - interrupted_at < 15  # stopped, not waited out
        assert error == ("Interrupted",
                         "interrupted: kept 1 hole (the trace so far is shown)"), error
        assert last_data["seg_name"] == ["", "X"]
        assert last_data["text"] == [t.text for t in expected.tokens]
        printed: list[str] = []
        client.execute_interactive(
            "print(repr(X), 'Y' in dir())", timeout=30,
            output_hook=lambda m: printed.append(m["content"].get("text", "")))
        assert "".join(printed) == f"{expected.text!r} False\n"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
