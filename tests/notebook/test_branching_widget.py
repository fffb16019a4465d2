"""Branching in the token view, from Python and from the front end's messages (no
browser: the messages are what js/src/views/token_view.js sends). The branches must be
what `LLM.branch` gives, and must survive into the data, the static HTML and to_html()."""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.notebook import codec
from lmql_nb.notebook.views import TokenView


@pytest.fixture(scope="module")
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


@pytest.fixture(scope="module")
def generation(llm):
    return llm.generate_sync("Once upon a time", max_tokens=8, return_details=True, cache=False)


def test_a_branch_from_a_click_is_llm_branch(llm, generation):
    view = TokenView(generation, model=llm)
    assert view.can_branch
    alternative = generation.tokens[2].top[1]
    view._on_message(view, {"type": "branch", "row": 0, "position": 2,
                            "token_id": alternative.token_id}, [])
    for future in list(view._running.values()):
        future.result(60)
    [branch] = view.branches
    expected = llm.branch_sync(generation, 2, alternative, max_tokens=16)
    assert (branch.row, branch.parent, branch.position, branch.status) == (1, 0, 2, "done")
    assert [t.token_id for t in branch.tokens] == [t.token_id for t in expected.tokens]
    assert branch.generation.prefix_ids == expected.prefix_ids
    columns = codec.unpack(view.data)
    assert columns["row_parent"].tolist() == [-1, 0]
    assert columns["row_position"].tolist() == [-1, 2]
    assert columns["seq_length"].tolist() == [len(generation.tokens), len(expected.tokens)]
    shared = sum(t.logprob for t in generation.tokens[:2])
    assert columns["row_shared_logprob"].tolist() == pytest.approx([0.0, shared])
    assert columns["row_status"] == ["done", "done"]


def test_branches_grow_a_tree_that_is_kept_in_static_html(llm, generation):
    view = TokenView(generation, model=llm)
    first = view.branch(0, 1, generation.tokens[1].top[1], max_tokens=4).result(60)
    second = view.branch(first.row, 2, first.tokens[2].top[1].token_id, max_tokens=3).result(60)
    third = view.branch(0, 5, generation.tokens[5].top[2], max_tokens=3).result(60)
    assert [b.parent for b in view.branches] == [0, 1, 0]
    assert second.generation.prefix_ids == (generation.tokens[0].token_id,
                                            first.tokens[0].token_id, first.tokens[1].token_id)
    html = view.static_html()
    assert html.count("↳ from #") == 3
    assert "from #2 at token 3" in html  # the branch of the branch
    # drawn as a tree: the branch of #2 directly after #2, before #4
    assert html.index("from #1 at token 2") < html.index("from #2 at token 3") < \
        html.index("from #1 at token 6")
    assert "from #2 at token 3" in view.to_html()
    view.remove_branch(first.row)  # takes its own branch along
    assert [(b.parent, b.position) for b in view.branches] == [(0, 5)]
    assert third.tokens == view.branches[0].tokens
    assert codec.unpack(view.data)["row_parent"].tolist() == [-1, 0]


def test_bad_requests_say_why_and_raise_nothing(llm, generation):
    view = TokenView(generation, model=llm)
    view._on_message(view, {"type": "branch", "row": 0, "position": 99, "token_id": 1}, [])
    assert "position must be in [0, 8)" in view.notice
    view._on_message(view, {"type": "remove", "row": 0}, [])
    assert "only branches can be removed" in view.notice
    assert view.branches == []
    plain = TokenView(generation)
    assert not plain.can_branch
    with pytest.raises(ValueError, match="no model to branch with"):
        plain.branch(0, 1, 1)
    with pytest.raises(TypeError, match="model must be an lmql_nb.LLM"):
        TokenView(generation, model="local:x")


def test_the_displayed_view_gains_the_branches_so_a_saved_notebook_shows_them(tiny_gpt2_path):
    """In a real kernel: a view shown as a cell's value is updated when a branch is made
    later, so its static rendering (what a saved notebook keeps) has the branch, and no
    empty Out[] is left behind."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in [
        f"import lmql_nb\nm = lmql_nb.model('local:{tiny_gpt2_path}')\n"
        "g = m.generate_sync('Once upon a time', max_tokens=6, return_details=True)\n"
        "view = lmql_nb.show(g, model=m)\nview",
        "view.branch(0, 2, g.tokens[2].top[1], max_tokens=4).result().status",
    ]]
    NotebookClient(notebook, timeout=120).execute()
    [shown] = notebook.cells[0].outputs
    assert shown["output_type"] == "display_data"
    assert "↳ from #1 at token 3" in shown["data"]["text/html"]
    assert notebook.cells[1].outputs[0]["data"]["text/plain"] == "'done'"


def test_static_branch_labels_use_the_live_views_notation():
    """One notation for a token in labels: whitespace as marks ("·very"), as the live view
    writes them, not Python reprs ("' very'")."""
    from types import SimpleNamespace

    from lmql_nb.notebook.views.token_view import branch_label

    def token(text):
        return SimpleNamespace(text=text)

    row = SimpleNamespace(parent=SimpleNamespace(tokens=[token(" the"), token(" very")]),
                          position=1, tokens=[token(" man"), token("\n")])
    assert branch_label(row, 0) == "from #1 at token 2: ·very → ·man"
