"""Branching in the token view and the comparison views, in a real JupyterLab and
Chromium: clicking an alternative streams a branch in beneath (its first token the one
clicked, its tokens what `LLM.branch` gives), the comparison view's hover shows both
models' numbers, and the heatmap of two models has a group each. Screenshots light and
dark go to artifacts/screenshots/."""

from __future__ import annotations

import nbformat
import pytest

from test_widgets_in_lab import _around, literal

PROMPT = "The capital of France is"


def _cells(gpt2: str, llama: str) -> list[str]:
    return [
        f"import lmql_nb\ngpt2 = lmql_nb.model({gpt2!r})\nllama = lmql_nb.model({llama!r})\n"
        f"g = gpt2.generate_sync({PROMPT!r}, max_tokens=10, return_details=True)\n"
        "view = lmql_nb.show(g, model=gpt2)\nview",
        "[(b.row, b.parent, b.position, b.tokens[0].token_id) for b in view.branches]",
        f"lmql_nb.compare_sync({PROMPT!r}, g.text, [gpt2, llama], labels=['gpt2', 'llama'])",
        "%load_ext lmql_nb",
        f'%lmql_score -m {gpt2} -m {llama} "{PROMPT}" " Paris" " Berlin" " Rome"',
        # the last cell: _open_and_run waits for this view to finish
        f"%%lmql_generate -m {gpt2} --max-tokens 120\nA long branching story",
    ]


@pytest.fixture(scope="module")
def expected(tiny_gpt2_path, tiny_llama_path):
    import lmql_nb

    gpt2 = lmql_nb.model(f"local:{tiny_gpt2_path}")
    llama = lmql_nb.model(f"local:{tiny_llama_path}")
    generation = gpt2.generate_sync(PROMPT, max_tokens=10, return_details=True)
    alternative = generation.tokens[2].top[1]
    return {
        "generation": generation, "alternative": alternative,
        "branch": gpt2.branch_sync(generation, 2, alternative, max_tokens=16),
        "comparison": lmql_nb.compare_sync(PROMPT, generation.text, [gpt2, llama],
                                           labels=["gpt2", "llama"]),
    }


@pytest.fixture(scope="module")
def page(lab, browser, tiny_gpt2_path, tiny_llama_path):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in
                      _cells(f"local:{tiny_gpt2_path}", f"local:{tiny_llama_path}")]
    nbformat.write(notebook, lab.root / "branching.ipynb")
    lab.set_theme("JupyterLab Light")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    _open_and_run(page, lab, "branching.ipynb")
    yield page
    context.close()


def _open_and_run(page, lab, name):
    """Open the notebook, accept the kernel dialog (JupyterLab may show it late), run
    all cells and wait for the last cell's view to finish."""
    from screenshots import SCREENSHOTS

    try:
        page.goto(lab.notebook_url(name))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        for _ in range(6):
            dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
            if dialog.count():
                dialog.locator("button.jp-mod-accept").click()
            page.wait_for_timeout(500)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_function(
            """() => [...document.querySelectorAll('.lmnb-tokens')].some(v =>
                v.querySelector('.lmnb-prompt-tail')?.textContent === 'A long branching story'
                && !v.classList.contains('lmnb-generating')
                && v.querySelectorAll('.lmnb-token').length > 0)""", timeout=120_000)
        page.mouse.move(0, 0)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "failure-branching.png"), full_page=True)
        raise


def _branch_row(view):
    return view.locator(".lmnb-sequence.lmnb-is-branch")


def test_clicking_an_alternative_streams_a_branch_beneath(page, expected, screenshots):
    view = page.locator(".lmnb-tokens").first
    view.locator(".lmnb-token").nth(2).hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    choice = tooltip.locator(".lmnb-branchable").first
    assert literal(choice.locator(".lmnb-alt-token").text_content()) == expected["alternative"].text
    page.screenshot(path=str(screenshots / "branch-tooltip-light.png"),
                    clip=_around(view.bounding_box(), tooltip.bounding_box()))
    choice.click()
    row = _branch_row(view)
    row.wait_for(state="visible")
    page.wait_for_function(
        """() => { const r = document.querySelector('.lmnb-tokens .lmnb-is-branch');
                   return r && !r.textContent.includes('generating'); }""", timeout=60_000)
    tokens = row.locator(".lmnb-token")
    shown = [literal(t) for t in tokens.all_text_contents()]
    branch = expected["branch"]
    assert shown[0] == expected["alternative"].text  # the clicked token comes first
    assert shown == [t.text for t in branch.tokens]
    head = row.locator(".lmnb-branch-head").text_content()
    assert "from #1 at token 3" in head
    totals = row.locator(".lmnb-sequence-totals").text_content()
    whole = sum(t.logprob for t in expected["generation"].tokens[:2]) + branch.logprob
    assert f"{whole:.2f}".replace("-", "−") in totals and "#1:" in totals
    page.mouse.move(0, 0)
    view.screenshot(path=str(screenshots / "branch-row-light.png"))

    # the branches are in Python too: re-run the cell that lists them
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    output = cell.locator(".jp-OutputArea-output")
    expected_text = f"[(1, 0, 2, {expected['alternative'].token_id})]"
    page.wait_for_function(
        "([el, text]) => el.textContent.includes(text)", arg=[output.element_handle(),
                                                              expected_text], timeout=30_000)


def test_a_branch_folds_and_is_removed(page, expected):
    view = page.locator(".lmnb-tokens").first
    if _branch_row(view).count() == 0:
        pytest.skip("needs the branch of the previous test")
    fold = view.locator("button.lmnb-fold")
    fold.click()
    assert _branch_row(view).first.is_hidden()
    fold.click()
    assert _branch_row(view).first.is_visible()
    view.locator("button.lmnb-remove").click()
    page.wait_for_function(
        "() => !document.querySelector('.lmnb-tokens .lmnb-is-branch')", timeout=30_000)


def test_comparison_view_shows_both_models_numbers_on_hover(page, expected, screenshots):
    comparison = expected["comparison"]
    view = page.locator(".lmnb-comparison").first
    assert "tokenizers differ: aligned on character spans" in view.locator(".lmnb-status").text_content()
    segments = view.locator(".lmnb-segment")
    assert segments.count() == len(comparison.segments)
    k = max(range(len(comparison.segments)), key=lambda i: abs(comparison.differences()[i]))
    segments.nth(k).hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    for m, label in enumerate(comparison.labels):
        number = f"{comparison.segment_logprobs(m)[k]:.4f}".replace("-", "−")
        assert f"{label}: logprob {number}" in text
    page.screenshot(path=str(screenshots / "comparison-hover-light.png"),
                    clip=_around(view.bounding_box(), tooltip.bounding_box()))
    page.mouse.move(0, 0)
    view.screenshot(path=str(screenshots / "comparison-light.png"))


def test_heatmap_of_two_models_has_a_group_each(page, screenshots):
    heatmap = page.locator(".lmnb-heatmap").first
    assert heatmap.locator(".lmnb-group-row").count() == 2
    assert heatmap.locator("tr.lmnb-argmax").count() == 2  # a winner per model
    heatmap.screenshot(path=str(screenshots / "heatmap-models-light.png"))


def test_dark_theme(lab, browser, screenshots):
    lab.set_theme("JupyterLab Dark")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    try:
        _open_and_run(page, lab, "branching.ipynb")
        view = page.locator(".lmnb-tokens").first
        view.locator(".lmnb-token").nth(2).hover()
        view.locator(".lmnb-tooltip .lmnb-branchable").first.click()
        page.wait_for_function(
            """() => { const r = document.querySelector('.lmnb-tokens .lmnb-is-branch');
                       return r && !r.textContent.includes('generating'); }""", timeout=60_000)
        page.mouse.move(0, 0)
        view.screenshot(path=str(screenshots / "branch-row-dark.png"))
        page.locator(".lmnb-comparison").first.screenshot(
            path=str(screenshots / "comparison-dark.png"))
        page.locator(".lmnb-heatmap").first.screenshot(
            path=str(screenshots / "heatmap-models-dark.png"))
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()
