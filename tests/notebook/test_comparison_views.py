"""The comparison view and the heatmap of several models: the data they send and their
static renderings, from results built by hand (numbers known independently)."""

from __future__ import annotations


import lmql_nb
from lmql_nb import Alternative, Comparison, ScoreComparison, ScoringResult, TokenInfo
from lmql_nb.notebook import codec
from lmql_nb.notebook.views import ComparisonView, ScoringHeatmap

XSS = "<img src=x onerror=alert(1)>"


def comparison():
    a = [TokenInfo(1, " ab", -1.0, 1, 0.5, (Alternative(1, " ab", -1.0), Alternative(7, " x", -2.0))),
         TokenInfo(2, "c", -2.0, 3, 0.9, ()), TokenInfo(3, XSS, -0.5, 1, 0.1, ())]
    b = [TokenInfo(4, " a", -0.25, 1, 0.2, ()), TokenInfo(5, "bc", -4.0, 2, 1.0, ()),
         TokenInfo(6, XSS, -0.75, 1, 0.1, ())]
    return Comparison("Prompt", " abc" + XSS, ["A", "B"], [a, b])


def test_comparison_view_sends_aligned_pieces_with_every_models_numbers():
    view = lmql_nb.show(comparison())
    assert isinstance(view, ComparisonView)
    columns = codec.unpack(view.data)
    assert columns["seg_text"] == [" abc", XSS]
    # piece 1: A's " ab"+"c" = -3.0, B's " a"+"bc" = -4.25; piece 2: -0.5 vs -0.75
    assert columns["seg_model_logprob"].tolist() == [-3.0, -4.25, -0.5, -0.75]
    assert columns["seg_difference"].tolist() == [-1.25, -0.25]
    assert columns["seg_model_tokens"].tolist() == [2, 2, 1, 1]
    assert columns["text"] == [" ab", "c", " a", "bc", XSS, XSS]  # segment, then model
    assert columns["alt_count"].tolist() == [2, 0, 0, 0, 0, 0]
    assert view.labels == ["A", "B"] and not view.same_tokens
    assert view.difference_range == 2.0  # the first range that holds |-1.25|
    html = view.static_html()
    assert "aligned on character spans" in html and XSS not in html
    assert "A: Σ logprob −3.50" in html and "B: Σ logprob −5.00" in html
    assert view.to_pandas()["A"].tolist() == [-1.0, -2.0, -0.5]


def scores(model, sums):
    values = [" Paris", " Berlin", XSS]
    return ScoringResult("The capital of France is", values, [[v] for v in values],
                         [[i] for i in range(3)], [[s] for s in sums], model)


def test_heatmap_of_several_models_groups_rows_and_marks_disagreement():
    compared = ScoreComparison(["A", "B"], [scores("a", [-1.0, -3.0, -9.0]),
                                            scores("b", [-4.0, -2.0, -9.0])])
    assert compared.winners() == {"A": " Paris", "B": " Berlin"} and not compared.agree()
    view = lmql_nb.show(compared)
    assert isinstance(view, ScoringHeatmap)
    assert view.group_labels == ["A", "B"] and view.model_identifier == "A vs B"
    columns = codec.unpack(view.data)
    assert columns["group"].tolist() == [0, 0, 0, 1, 1, 1]
    assert columns["score_sum"].tolist() == [-1.0, -3.0, -9.0, -4.0, -2.0, -9.0]
    html = view.static_html()
    assert html.count("· the models disagree</th>") == 2 and html.count("★") == 2
    assert html.count("a winner the models disagree on") == 4  # Paris and Berlin, twice
    assert XSS not in html
    assert list(view.to_pandas().columns) == ["value", "A", "prob A", "B", "prob B"]
    agreeing = ScoreComparison(["A", "B"], [scores("a", [-1.0, -3.0, -9.0])] * 2)
    assert "disagree" not in ScoringHeatmap(agreeing).static_html()


def test_the_score_magic_with_two_models_shows_one_grouped_heatmap(tiny_gpt2_path,
                                                                     tiny_llama_path):
    import nbformat
    from nbclient import NotebookClient

    models = [f"local:{tiny_gpt2_path}", f"local:{tiny_llama_path}"]
    expected = lmql_nb.compare_scores_sync("The capital of France is", [" Paris", " Berlin"],
                                           models)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in [
        "%load_ext lmql_nb",
        f'%lmql_score -m {models[0]} -m {models[1]} -o both "The capital of France is" '
        '" Paris" " Berlin"',
        "print(type(both).__name__, both.winners() == dict(zip(both.labels, "
        f"{[expected.winners()[m] for m in models]!r})))",
    ]]
    NotebookClient(notebook, timeout=120).execute()
    [shown] = notebook.cells[1].outputs
    html = shown["data"]["text/html"]
    assert html.count("<th colspan=\"6\"") == 2  # a group of rows per model
    assert html.count("★") == 2
    assert ("the models disagree" in html) == (not expected.agree())
    assert notebook.cells[2].outputs[0]["text"] == "ScoreComparison True\n"
