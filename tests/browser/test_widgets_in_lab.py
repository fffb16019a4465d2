"""The widgets in a real JupyterLab, in Chromium: a notebook is opened and run, and
what a person would see is checked (and saved as screenshots under artifacts/)."""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest

XSS = "<img src=x onerror=alert(1)>"
_MARKS = {"·": " ", "↵": "\n", "→": "\t", "◌": "", "\\r": "\r"}
_SHOWN = re.compile(r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\r|[·↵→◌]")


def literal(shown: str) -> str:
    """The text behind the view's visible forms of whitespace and control characters."""
    return _SHOWN.sub(lambda m: _MARKS[m.group()] if m.group() in _MARKS
                      else chr(int(m.group()[2:], 16)), shown)


DATASET_PROMPTS = [f"Review {i}: the capital of" for i in range(6)]
DATASET_VALUES = [" France", " Germany", " river"]
DATASET_GOLD = [DATASET_VALUES[i % 3] for i in range(6)]


def _cells(model: str) -> list[str]:
    return [
        f"import lmql_nb\nfrom lmql_nb import Alternative, Generation, TokenInfo\n"
        f"m = lmql_nb.model({model!r})\n_ = m.generate_sync('x', max_tokens=1)",
        "g = m.generate_sync('The capital of France is', max_tokens=12, return_details=True)\n"
        "lmql_nb.show(g)",
        f"xss = {XSS!r}\n"
        "fake = Generation(xss, (TokenInfo(1, xss, -0.5, 1, 0.7, (Alternative(1, xss, -0.5), "
        "Alternative(2, '<script>alert(2)</script>', -1.2))),), 'stop', 'untrusted')\n"
        "lmql_nb.show(fake)",
        "%load_ext lmql_nb",
        f'%lmql_score -m {model} "The capital of France is" " Paris" " Berlin" "{XSS}"',
        f"table = m.score_many_sync({DATASET_PROMPTS!r}, {DATASET_VALUES!r}, "
        f"gold={DATASET_GOLD!r})\ntable",
        f"%%lmql_generate -m {model} --max-tokens 120\nA long story",
    ]


# records, from before the run, how many tokens the streaming view shows at each change
RECORD_STREAM = """() => {
  window.__counts = [];
  new MutationObserver(() => {
    for (const view of document.querySelectorAll('.lmnb-tokens')) {
      if (view.querySelector('.lmnb-prompt-tail')?.textContent === 'A long story') {
        const n = view.querySelectorAll('.lmnb-token').length;
        if (window.__counts[window.__counts.length - 1] !== n) window.__counts.push(n);
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def expected(tiny_gpt2_path):
    import lmql_nb

    m = lmql_nb.model(f"local:{tiny_gpt2_path}")
    generation = m.generate_sync("The capital of France is", max_tokens=12, return_details=True)
    values = [" Paris", " Berlin", XSS]
    scores = m.score_sync("The capital of France is", values)
    sums = [float(np.sum(s)) for s in scores.token_scores]
    table = [m.score_sync(p, DATASET_VALUES).scores() for p in DATASET_PROMPTS]
    return {"generation": generation, "values": values, "argmax": values[int(np.argmax(sums))],
            "dataset_argmax": [DATASET_VALUES[int(np.argmax(s))] for s in table],
            # cache=False: a cached answer would reach the kernel's cell whole, not streamed
            "stream": m.generate_sync("A long story", max_tokens=120, return_details=True,
                                      cache=False)}


def _open_and_run(page, lab, name):
    try:
        _run_all(page, lab, name)
    except Exception:
        from screenshots import SCREENSHOTS

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "failure.png"), full_page=True)
        raise


def _run_all(page, lab, name):
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:  # JupyterLab may ask although the notebook names its kernel (late, under load)
        dialog.wait_for(state="visible", timeout=5000)
    except Exception:
        pass
    if dialog.count():
        dialog.locator("button.jp-mod-accept").click()
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.evaluate(RECORD_STREAM)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # the last cell's view is done when it no longer says "generating"
    page.wait_for_function(
        """() => [...document.querySelectorAll('.lmnb-tokens')].some(v =>
            v.querySelector('.lmnb-prompt-tail')?.textContent === 'A long story'
            && !v.classList.contains('lmnb-generating')
            && v.querySelectorAll('.lmnb-token').length > 0)""", timeout=90_000)
    page.mouse.move(0, 0)


@pytest.fixture(scope="module")
def lab_page(lab, browser, tiny_gpt2_path, screenshots):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in _cells(f"local:{tiny_gpt2_path}")]
    nbformat.write(notebook, lab.root / "widgets.ipynb")
    lab.set_theme("JupyterLab Light")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    _open_and_run(page, lab, "widgets.ipynb")
    page.screenshot(path=str(screenshots / "lab-light-notebook.png"), full_page=True)
    yield page
    context.close()


def test_token_view_shows_the_generation_coloured(lab_page, expected, screenshots):
    view = lab_page.locator(".lmnb-tokens").nth(0)
    tokens = view.locator(".lmnb-token")
    generation = expected["generation"]
    assert tokens.count() == len(generation.tokens)
    texts = tokens.evaluate_all("els => els.map(e => e.textContent)")
    assert [literal(t) for t in texts] == [t.text for t in generation.tokens]
    backgrounds = tokens.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert all(b not in ("", "rgba(0, 0, 0, 0)", "transparent") for b in backgrounds)
    assert len(set(backgrounds)) > 1  # coloured by probability, not one flat colour
    view.screenshot(path=str(screenshots / "token-view-light.png"))


def test_hovering_a_token_shows_its_alternatives(lab_page, expected, screenshots):
    view = lab_page.locator(".lmnb-tokens").nth(0)
    token = expected["generation"].tokens[1]
    view.locator(".lmnb-token").nth(1).hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    rows = tooltip.locator(".lmnb-alternative")
    assert rows.count() == len(token.top)
    shown = [literal(t) for t in tooltip.locator(".lmnb-alt-token").all_text_contents()]
    assert shown == [a.text for a in token.top]
    stats = tooltip.locator(".lmnb-tip-stats").text_content()
    assert f"rank {token.rank}" in stats and "entropy" in stats
    assert f"{100 * np.exp(token.top[0].logprob):.1f}%" in tooltip.text_content() or \
        f"{100 * np.exp(token.top[0].logprob):.2f}%" in tooltip.text_content()
    lab_page.screenshot(path=str(screenshots / "token-view-hover-light.png"),
                        clip=_around(view.bounding_box(), tooltip.bounding_box()))
    lab_page.mouse.move(0, 0)


def test_colour_metric_switches_in_place(lab_page):
    view = lab_page.locator(".lmnb-tokens").nth(0)
    before = view.locator(".lmnb-token").evaluate_all("els => els.map(e => e.style.background)")
    view.locator(".lmnb-button", has_text="entropy").click()
    assert view.locator(".lmnb-button.lmnb-active").text_content() == "entropy"
    after = view.locator(".lmnb-token").evaluate_all("els => els.map(e => e.style.background)")
    assert after != before
    view.locator(".lmnb-button", has_text="prob").first.click()


def test_heatmap_has_one_row_per_value_and_marks_the_argmax(lab_page, expected, screenshots):
    heatmap = lab_page.locator(".lmnb-heatmap").first
    rows = heatmap.locator("tbody .lmnb-row")
    assert rows.count() == len(expected["values"])
    values = [literal(t) for t in heatmap.locator(".lmnb-value-text").all_text_contents()]
    assert values == expected["values"]
    best = heatmap.locator(".lmnb-row.lmnb-argmax")
    assert best.count() == 1
    assert literal(best.locator(".lmnb-value-text").text_content()) == expected["argmax"]
    assert best.locator(".lmnb-argmax-mark").is_visible()
    heatmap.screenshot(path=str(screenshots / "heatmap-light.png"))


def test_heatmap_sorts_and_switches_aggregation(lab_page):
    heatmap = lab_page.locator(".lmnb-heatmap").first
    probs = lambda: [float(t.rstrip("%")) for t in  # noqa: E731
                     heatmap.locator("tbody .lmnb-prob-text").all_text_contents()
                     if t.rstrip("%").replace(".", "").isdigit()]
    heatmap.locator("th.lmnb-col-prob").click()
    first = probs()
    assert first == sorted(first, reverse=True)
    heatmap.locator("th.lmnb-col-prob").click()
    assert probs() == sorted(probs())
    heatmap.locator(".lmnb-button", has_text="mean").click()
    assert "lmnb-agg-active" in heatmap.locator("th.lmnb-col-mean").get_attribute("class")
    assert "lmnb-agg-active" not in heatmap.locator("th.lmnb-col-sum").get_attribute("class")
    heatmap.locator(".lmnb-button", has_text="sum").click()


def test_untrusted_text_is_shown_literally_and_runs_nothing(lab_page):
    assert lab_page.dialogs == []
    assert lab_page.locator(".lmnb img, .lmnb script").count() == 0
    fake = lab_page.locator(".lmnb-tokens").nth(1)
    assert literal(fake.locator(".lmnb-token").first.text_content()) == XSS
    fake.locator(".lmnb-token").first.hover()
    assert "<script>alert(2)</script>" in literal(fake.locator(".lmnb-tooltip").text_content())
    heatmap = lab_page.locator(".lmnb-heatmap").first
    values = [literal(t) for t in heatmap.locator(".lmnb-value-text").all_text_contents()]
    assert XSS in values
    assert lab_page.dialogs == []


def test_generation_streamed_into_the_view(lab_page, expected):
    counts = lab_page.evaluate("window.__counts")
    final = len(expected["stream"].tokens)
    assert counts[-1] == final
    partial = [c for c in counts if 0 < c < final]
    assert len(partial) >= 1, counts  # the view grew while tokens arrived


def test_score_many_shows_a_progress_bar_and_the_dataset_view(lab_page, expected, screenshots):
    view = lab_page.locator(".lmnb-dataset").first
    rows = view.locator(".lmnb-dataset-table tbody tr")
    assert rows.count() == len(DATASET_PROMPTS)
    shown = [literal(t) for t in view.locator("tbody .lmnb-col-label .lmnb-value-text")
             .all_text_contents()]
    assert shown[0::2] == expected["dataset_argmax"]  # argmax, gold alternate per row
    correct = sum(a == g for a, g in zip(expected["dataset_argmax"], DATASET_GOLD))
    assert f"({correct} of {len(DATASET_PROMPTS)})" in view.locator(".lmnb-toolbar .lmnb-status").text_content()
    assert view.locator(".lmnb-confusion-table").count() == 1
    # tqdm's notebook bar, in the same output area, ran to the end
    cell = lab_page.locator(".jp-Cell", has=lab_page.locator(".lmnb-dataset"))
    assert f"{len(DATASET_PROMPTS)}/{len(DATASET_PROMPTS)}" in cell.inner_text()
    view.screenshot(path=str(screenshots / "dataset-lab-light.png"))


def test_dark_theme(lab, browser, screenshots):
    lab.set_theme("JupyterLab Dark")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    try:
        _open_and_run(page, lab, "widgets.ipynb")
        background = page.evaluate(
            "getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()")
        assert background.lower() in ("#111111", "#111")  # JupyterLab Dark is active
        tooltip_bg = page.locator(".lmnb-tokens").first.evaluate(
            "el => getComputedStyle(el.querySelector('.lmnb-tooltip')).backgroundColor")
        assert tooltip_bg == "rgb(17, 17, 17)"  # the widget follows the theme's variables
        page.locator(".lmnb-tokens").first.screenshot(path=str(screenshots / "token-view-dark.png"))
        page.locator(".lmnb-heatmap").first.screenshot(path=str(screenshots / "heatmap-dark.png"))
        page.locator(".lmnb-dataset").first.screenshot(path=str(screenshots / "dataset-lab-dark.png"))
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()


def _around(*boxes, margin=8):
    x0 = min(b["x"] for b in boxes) - margin
    y0 = min(b["y"] for b in boxes) - margin
    x1 = max(b["x"] + b["width"] for b in boxes) + margin
    y1 = max(b["y"] + b["height"] for b in boxes) + margin
    return {"x": max(0, x0), "y": max(0, y0), "width": x1 - max(0, x0), "height": y1 - max(0, y0)}
