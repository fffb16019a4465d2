"""`%%lmql` in a real JupyterLab, in Chromium: the trace view streams while the program
runs, labels each hole with its name, colours its tokens with the alternatives on hover,
shows one row per sample and a distribution as bars, and shows model text literally.
Expected values come from `generate`/`score` on the prompt built so far, in this process.
Screenshots in light and dark under artifacts/screenshots/."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
from test_widgets_in_lab import _around, literal

SCRIPT = "<script>alert(1)</script>"
STORY_PROMPT = "Story of <script>:"  # short: the tiny model sees 128 tokens
STORY_TOKENS = 40  # its text re-tokenizes into more tokens: stay inside 128


def _quoted(text: str) -> str:
    """`text` as a one-line LMQL prompt string."""
    return '"' + text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


def _cells(model: str) -> list[str]:
    return [
        f"import lmql_nb\nm = lmql_nb.model({model!r})\n_ = m.generate_sync('x', max_tokens=1)",
        f"%load_ext lmql_nb\n%config LmqlMagics.model = {model!r}\n"
        "%config LmqlMagics.update_interval = 0.01",  # a short run still shows growth
        "%%lmql -o story\n" + _quoted(STORY_PROMPT + "[STORY]")
        + f" where len(TOKENS(STORY)) < {STORY_TOKENS + 1}\n"
        '"\\nMood:[MOOD]" where MOOD in [" good", " bad"]\n',
        '%%lmql --decoder sample -n 2 --seed 3\n"Once upon[A]" where len(TOKENS(A)) < 6\n',
        '%%lmql\nargmax\n    "Numbers: 1 2[N]"\ndistribution\n    N in [" 3", " 4", " x"]\n',
        # model output as the runtime would record it, shown by a result left in a cell
        "from lmql_nb import TokenInfo, Alternative\n"
        "from lmql_nb.query import LMQLResult, Trace, TextSegment, HoleSegment\n"
        f"evil = HoleSegment('EVIL', {SCRIPT!r}, (TokenInfo(1, {SCRIPT!r}, -0.5, 1, 0.1, "
        f"(Alternative(1, {SCRIPT!r}, -0.5), Alternative(2, '<img src=x onerror=alert(2)>', "
        "-1.0))),))\n"
        "t = Trace([TextSegment('Say:'), evil])\nLMQLResult(t.prompt, {'EVIL': evil.text}, trace=t)",
    ]


# records, from before the run, how many tokens the story's trace view shows at each change
RECORD_STREAM = """() => {
  window.__counts = [];
  new MutationObserver(() => {
    const hole = document.querySelector('.lmnb-trace .lmnb-hole[data-name="STORY"]');
    if (!hole) return;
    const n = hole.querySelectorAll('.lmnb-token').length;
    if (window.__counts[window.__counts.length - 1] !== n) window.__counts.push(n);
  }).observe(document.body, {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def expected(tiny_gpt2_path):
    import lmql_nb

    m = lmql_nb.model(f"local:{tiny_gpt2_path}")
    story = m.generate_sync(STORY_PROMPT, max_tokens=STORY_TOKENS, return_details=True)
    mood_prompt = STORY_PROMPT + story.text + "\nMood:"
    mood = m.generate_sync(mood_prompt, choices=[" good", " bad"])
    scores = m.score_sync("Numbers: 1 2", [" 3", " 4", " x"])
    sums = np.array([float(np.sum(s)) for s in scores.token_scores])
    probs = np.exp(sums - sums.max())
    return {"story": story, "mood": mood, "probs": probs / probs.sum()}


def _run(page, lab, name):
    # JupyterLab may ask for a kernel although the notebook names one, at any moment of
    # its start: accept whenever it blocks an action
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    page.add_locator_handler(dialog, lambda d: d.locator("button.jp-mod-accept").click())
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    try:
        dialog.wait_for(timeout=3000)
    except Exception:  # no dialog this time
        pass
    page.evaluate(RECORD_STREAM)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # done when the last cell's result view has drawn
    page.wait_for_function(
        "() => document.querySelector('.lmnb-trace .lmnb-hole[data-name=\"EVIL\"]')",
        timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.lmnb-trace')].every(v => "
        "!v.classList.contains('lmnb-generating'))", timeout=60_000)
    page.mouse.move(0, 0)


def _open(lab, browser, tiny_gpt2_path, theme):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in _cells(f"local:{tiny_gpt2_path}")]
    nbformat.write(notebook, lab.root / "query.ipynb")
    lab.set_theme(theme)
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        _run(page, lab, "query.ipynb")
    except Exception:
        from screenshots import SCREENSHOTS

        page.screenshot(path=str(SCREENSHOTS / "failure-query.png"), full_page=True)
        context.close()
        raise
    return context, page


@pytest.fixture(scope="module")
def lab_page(lab, browser, tiny_gpt2_path, screenshots):
    context, page = _open(lab, browser, tiny_gpt2_path, "JupyterLab Light")
    page.screenshot(path=str(screenshots / "lab-query-notebook-light.png"), full_page=True)
    yield page
    context.close()


def _views(page):
    return page.locator(".lmnb-trace")


def test_holes_are_labelled_and_hold_the_generated_tokens(lab_page, expected, screenshots):
    view = _views(lab_page).nth(0)
    assert view.locator(".lmnb-hole-name").all_text_contents() == ["STORY", "MOOD"]
    story = view.locator(".lmnb-hole[data-name='STORY'] .lmnb-token")
    assert [literal(t) for t in story.all_text_contents()] == \
        [t.text for t in expected["story"].tokens]
    mood = view.locator(".lmnb-hole[data-name='MOOD'] .lmnb-token")
    assert literal("".join(mood.all_text_contents())) == expected["mood"]
    colours = story.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) > 1  # coloured by probability
    # the prompt as written, <script> included, is text
    assert view.locator(".lmnb-trace-prompt").first.text_content() == STORY_PROMPT
    view.screenshot(path=str(screenshots / "trace-view-lab-light.png"))


def test_hover_shows_the_alternatives(lab_page, expected, screenshots):
    view = _views(lab_page).nth(0)
    token = expected["story"].tokens[2]
    view.locator(".lmnb-hole[data-name='STORY'] .lmnb-token").nth(2).hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    shown = [literal(t) for t in tooltip.locator(".lmnb-alt-token").all_text_contents()]
    assert shown == [a.text for a in token.top]
    lab_page.screenshot(path=str(screenshots / "trace-view-lab-hover-light.png"),
                        clip=_around(view.bounding_box(), tooltip.bounding_box()))
    lab_page.mouse.move(0, 0)


def test_the_view_grew_while_the_program_ran(lab_page, expected):
    counts = lab_page.evaluate("window.__counts")
    final = len(expected["story"].tokens)
    assert counts[-1] == final
    assert any(0 < c < final for c in counts), counts


def test_one_row_per_sample(lab_page):
    rows = _views(lab_page).nth(1).locator(".lmnb-trace-row")
    assert rows.count() == 2
    for r in range(2):
        assert rows.nth(r).locator(".lmnb-hole-name").all_text_contents() == ["A"]


def test_distribution_as_bars(lab_page, expected):
    bars = _views(lab_page).nth(2).locator(".lmnb-distribution[data-name='N'] "
                                           ".lmnb-distribution-value")
    widths = bars.locator(".lmnb-prob-fill").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width / "
        "e.parentElement.getBoundingClientRect().width)")
    assert widths == pytest.approx(expected["probs"].tolist(), abs=0.01)
    best = int(np.argmax(expected["probs"]))
    assert "lmnb-argmax" in bars.nth(best).get_attribute("class")


def test_model_output_is_literal_text(lab_page):
    view = _views(lab_page).nth(3)
    assert literal(view.locator(".lmnb-hole[data-name='EVIL'] .lmnb-token").text_content()) \
        == SCRIPT
    view.locator(".lmnb-token").first.hover()
    assert "<img src=x onerror=alert(2)>" in literal(
        view.locator(".lmnb-tooltip").text_content())
    assert lab_page.locator(".lmnb script, .lmnb img").count() == 0
    assert lab_page.dialogs == []
    lab_page.mouse.move(0, 0)


def test_dark_theme(lab, browser, tiny_gpt2_path, screenshots):
    context, page = _open(lab, browser, tiny_gpt2_path, "JupyterLab Dark")
    try:
        background = page.evaluate(
            "getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()")
        assert background.lower() in ("#111111", "#111")
        _views(page).nth(0).screenshot(path=str(screenshots / "trace-view-lab-dark.png"))
        _views(page).nth(2).screenshot(path=str(screenshots / "trace-view-lab-dark-bars.png"))
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()
