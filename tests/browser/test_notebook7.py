"""The widgets in Jupyter Notebook 7 (not only JupyterLab), in Chromium: a notebook is
opened and run, the token view and the heatmap draw, and hovering shows alternatives."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ACCEPT_KERNEL, jupyter_server, require_chromium, run_all


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
    context.add_init_script(ACCEPT_KERNEL)
    page = context.new_page()
    try:
        page.goto(f"{url}/notebooks/nb7.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        run_all(page)
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
        page.mouse.move(0, 0)
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Control+S")
        page.wait_for_function("!document.title.startsWith('*')", timeout=30_000)
        page.wait_for_timeout(1000)
    finally:
        context.close()
    _reopen_without_a_kernel(url, token, root, browser, expected, screenshots)


def _reopen_without_a_kernel(url, token, root, browser, expected, screenshots):
    """Saved, closed, its kernel stopped, reopened: the static renderings, never
    "model not found"."""
    import json
    import urllib.request

    from test_widgets_in_lab import literal

    saved = nbformat.read(root / "nb7.ipynb", as_version=4)
    ours = [o for c in saved.cells for o in c.get("outputs", []) if "lmql_nb" in o.get("metadata", {})]
    assert len(ours) == 2 and all("text/html" in o["data"] and
                                  "application/vnd.jupyter.widget-view+json" not in o["data"]
                                  for o in ours)
    for session in json.load(urllib.request.urlopen(f"{url}/api/sessions?token={token}")):
        urllib.request.urlopen(urllib.request.Request(
            f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE"))
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{url}/notebooks/nb7.ipynb?token={token}")
        page.wait_for_selector(".jp-OutputArea-output .lmnb-static", timeout=60_000)
        page.wait_for_timeout(1500)
        text = page.locator(".jp-Notebook").inner_text()
        assert "model not found" not in text.lower() and "Error displaying widget" not in text
        spans = page.locator(".lmnb-static").first.locator("span[title^='p ']")
        shown = [literal(t) for t in spans.evaluate_all("els => els.map(e => e.textContent)")]
        assert shown == [t.text for t in expected.tokens]
        page.screenshot(path=str(screenshots / "notebook7-reopened.png"), full_page=True)
    finally:
        context.close()
