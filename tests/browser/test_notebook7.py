"""The widgets in Jupyter Notebook 7 (not only JupyterLab), in Chromium: a notebook is
opened and run, the token view and the heatmap draw, and hovering shows alternatives."""

from __future__ import annotations

import nbformat
import pytest
from conftest import jupyter_server, require_chromium


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("nb7-root")
    with jupyter_server("notebook", root, root.parent / "nb7.log") as (url, token):
        yield url, token, root


def test_widgets_draw_and_hover_in_notebook_7(notebook_server, browser, tiny_gpt2_path,
                                              screenshots):
    import lmql_nb

    url, token, root = notebook_server
    model = f"local:{tiny_gpt2_path}"
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in (
        f"import lmql_nb\nm = lmql_nb.model({model!r})\n"
        "lmql_nb.show(m.generate_sync('The capital of France is', max_tokens=8, "
        "return_details=True))",
        f'%load_ext lmql_nb\n%lmql_score -m {model} "The capital of" " France" " Germany"',
    )]
    nbformat.write(notebook, root / "nb7.ipynb")
    expected = lmql_nb.model(model).generate_sync("The capital of France is", max_tokens=8,
                                                  return_details=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{url}/notebooks/nb7.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_selector(".lmnb-token", timeout=90_000)
        page.wait_for_selector(".lmnb-heatmap-table tbody tr",
                               timeout=90_000)
        tokens = page.locator(".lmnb-tokens .lmnb-token")
        assert tokens.count() == len(expected.tokens)
        background = tokens.first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert background not in ("", "rgba(0, 0, 0, 0)", "transparent")  # coloured
        tokens.first.hover()
        tooltip = page.locator(".lmnb-tooltip").first
        tooltip.wait_for(state="visible", timeout=10_000)
        assert "rank" in tooltip.inner_text()
        page.screenshot(path=str(screenshots / "notebook7.png"), full_page=True)
    finally:
        context.close()
