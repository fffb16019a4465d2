"""The magics in a real kernel (nbclient), on the tiny Llama.

Expected results come from calling the Python API in this process with the arguments the
magic should have derived (prompt after interpolation, options), so a magic that drops an
option, mangles the prompt or stores the wrong thing fails.
"""

from __future__ import annotations

import json

import pytest

from nb_helpers import WIDGET_MIME, display_data, error, execute_cells, stdout

CELLS = {
    "load": "%load_ext lmql_nb",
    # loading shows the engine's progress bars; get them out of the way of later cells
    "config": "%config LmqlMagics.model = {model!r}\n"
              "import lmql_nb\n_ = lmql_nb.model({model!r}).generate_sync('x', max_tokens=1)",
    "vars": 'import json\ncity = "Paris"\ncountry = "France"\n'
            'cities = [" Paris", " Berlin", " Rome"]',
    "widget": "%%lmql_generate --max-tokens 6 -o out1\nThe capital of {city} is",
    "print_out1": "print(repr(out1))",
    "text": "%%lmql_generate --max-tokens 5 --format text -o out2\nA {{literal}} brace",
    "json": "%%lmql_generate --format json --max-tokens 3 --top-logprobs 4\nHello",
    "sample": "%%lmql_generate --decoder sample -n 2 --seed 3 --max-tokens 4 -o out3 "
              "--format text\n"
              "Once upon",
    "print_out3": "print(json.dumps(out3))",
    "config_max": "%config LmqlMagics.max_tokens = 3\n",
    "default_max": "%%lmql_generate -o out4 --format text\nNumbers:",
    "score": '%lmql_score "The capital of France is" " Paris" " Berlin" -o s1',
    "score_list": '%lmql_score --agg mean -o s2 "The capital of {country} is" {cities}',
    "print_s2": "import json\nprint(json.dumps([s2.continuations, list(s2.scores())]))",
    # a result as a cell's value: its widget through the display hook lmql_nb registers
    "bare_result": "s1",
    "unknown_name": "%%lmql_generate\nThe capital of {nowhere} is",
    "bad_decoder": "%%lmql_generate --decoder nope\nx",
    # a temperature alone means sampling (LMQL's rule); with beam search it is an error
    "bad_temperature": "%%lmql_generate --decoder beam --temperature 0.5\nx",
    "bad_int": "%%lmql_generate --max-tokens abc\nx",
    "bad_flag": "%%lmql_generate --bogus 1\nx",
    "stray_brace": "%%lmql_generate\nan open { brace",
    "score_list_prompt": '%lmql_score {cities} " x"',
    "score_quote": '%lmql_score "unclosed',
    "score_missing": '%lmql_score "only a prompt"',
    "score_bad_agg": '%lmql_score --agg max "p" " v"',
    "score_not_str": 'numbers = [1, 2]\n%lmql_score "p" {numbers}',
}


@pytest.fixture(scope="module")
def run(tiny_llama_path, tmp_path_factory):
    model = f"local:{tiny_llama_path}"
    sources = [CELLS[name].format(model=model) if name == "config" else CELLS[name]
               for name in CELLS]
    notebook = execute_cells(sources, tmp_path_factory.mktemp("magics"))
    return dict(zip(CELLS, notebook.cells))


def test_setup_cells_run_without_error(run):
    for name in ("load", "config", "vars", "config_max"):
        assert error(run[name]) is None, (name, error(run[name]))


def test_generate_widget_shows_a_token_view_and_stores_the_text(run, tiny_llm):
    expected = tiny_llm.generate_sync("The capital of Paris is", max_tokens=6)
    cell = run["widget"]
    assert error(cell) is None
    [data] = display_data(cell)
    assert WIDGET_MIME in data
    assert data["text/plain"] == expected  # updated to the completion when done
    assert stdout(run["print_out1"]) == repr(expected) + "\n"


def test_generate_text_streams_and_double_braces_are_literal(run, tiny_llm):
    expected = tiny_llm.generate_sync("A {literal} brace", max_tokens=5)
    assert stdout(run["text"]) == expected + "\n"


def test_generate_json_has_per_token_data(run, tiny_llm):
    expected = tiny_llm.generate_sync("Hello", max_tokens=3, top_logprobs=4, return_details=True)
    payload = json.loads(stdout(run["json"]))
    [generation] = payload["generations"]
    assert generation["text"] == expected.text
    assert [t["token_id"] for t in generation["tokens"]] == [t.token_id for t in expected.tokens]
    assert all(len(t["top"]) == 4 for t in generation["tokens"])
    assert generation["tokens"][0]["logprob"] == pytest.approx(expected.tokens[0].logprob)


def test_generate_sampling_with_n_stores_a_list(run, tiny_llm):
    expected = tiny_llm.generate_sync("Once upon", max_tokens=4, decoder="sample", n=2, seed=3)
    assert json.loads(stdout(run["print_out3"])) == expected
    assert stdout(run["sample"]) == f"[1] {expected[0]}\n[2] {expected[1]}\n"


def test_config_default_max_tokens_applies(run, tiny_llm):
    expected = tiny_llm.generate_sync("Numbers:", max_tokens=3)
    assert error(run["default_max"]) is None
    assert stdout(run["default_max"]) == expected + "\n"


def test_score_shows_heatmap_with_the_seed_text_form(run, tiny_llm):
    expected = tiny_llm.score_sync("The capital of France is", [" Paris", " Berlin"])
    [data] = display_data(run["score"])
    assert WIDGET_MIME in data
    assert data["text/plain"] == repr(expected)


def test_a_result_as_a_cells_value_shows_its_widget(run, tiny_llm):
    expected = tiny_llm.score_sync("The capital of France is", [" Paris", " Berlin"])
    [data] = display_data(run["bare_result"])
    assert WIDGET_MIME in data
    assert data["text/plain"] == repr(expected)


def test_score_expands_list_variables_and_interpolates_the_prompt(run, tiny_llm):
    expected = tiny_llm.score_sync("The capital of France is", [" Paris", " Berlin", " Rome"])
    values, scores = json.loads(stdout(run["print_s2"]))
    assert values == [" Paris", " Berlin", " Rome"]
    assert scores == pytest.approx(list(expected.scores()))


@pytest.mark.parametrize("name, needles", [
    ("unknown_name", ["nowhere", "{{"]),
    ("bad_decoder", ["--decoder", "nope", "argmax", "sample", "beam"]),
    ("bad_temperature", ["temperature", "sample"]),
    ("bad_int", ["--max-tokens", "an int", "abc"]),
    ("bad_flag", ["--bogus", "usage:", "--max-tokens"]),
    ("stray_brace", ["{{"]),
    ("score_list_prompt", ["prompt", "list"]),
    ("score_quote", ["quot"]),
    ("score_missing", ["values"]),
    ("score_bad_agg", ["--agg", "max", "sum", "mean", "normalized"]),
    ("score_not_str", ["{numbers}", "int"]),
])
def test_bad_input_is_a_clear_usage_error(run, name, needles):
    found = error(run[name])
    assert found is not None, f"{name} did not fail"
    ename, message = found
    assert ename == "UsageError", (ename, message)
    for needle in needles:
        assert needle in message, (needle, message)
