"""Outputs people keep: a notebook run in JupyterLab, saved, closed and reopened shows
every lmql_nb output (never "model not found"); the views read like text and copy as
text; one log-probability has one colour in the token view, the heatmap and the static
rendering; tooltips stay inside the output area; a constrained token's tooltip lists the
allowed choices first; lmql_nb logs nothing to the console; nbconvert's HTML holds the
text, the colours and the numbers without a script. Screenshots in light and dark."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import urllib.request

import nbformat
import numpy as np
import pytest
from conftest import ACCEPT_KERNEL, run_all
from test_widgets_in_lab import literal

from lmql_nb.notebook.views.colours import logprob_colour

PROMPT = "Once upon a time"
CHOICES = [" yes", " no", " maybe"]
QUESTION = "Is Paris in France? Answer:"
VALUES = [" Paris", " Berlin", " a small town by the sea"]


def _cells(model: str) -> list[str]:
    return [
        (f"import lmql_nb\nm = lmql_nb.model({model!r})\n"
         f"story = m.generate_sync({PROMPT!r}, max_tokens=200, return_details=True)\nstory"),
        (f"answer = m.generate_sync({QUESTION!r}, choices={CHOICES!r}, top_logprobs=5, "
         "return_details=True)\nanswer"),
        "%load_ext lmql_nb",
        ("%lmql_score -m " + model + " \"The capital of France is\" "
         + " ".join(f'"{v}"' for v in VALUES)),
    ]


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def expected(tiny_gpt2_path):
    import lmql_nb

    m = lmql_nb.model(f"local:{tiny_gpt2_path}")
    scores = m.score_sync("The capital of France is", VALUES)
    return {
        "story": m.generate_sync(PROMPT, max_tokens=200, return_details=True),
        "answer": m.generate_sync(QUESTION, choices=CHOICES, top_logprobs=5,
                                  return_details=True),
        "scores": scores,
    }


def _console_recorder(page):
    page.messages = []
    page.on("console", lambda message: page.messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.messages.append(f"pageerror: {error}"))


def _ours(messages):
    """Console messages that come from lmql_nb's views (or anywidget about them)."""
    return [m for m in messages if re.search(r"lmql_nb|lmnb|Direct export of a 'render'", m)]


def _wait_idle(page):
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.wait_for_timeout(800)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.locator("button.jp-mod-accept").click()
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


@pytest.fixture(scope="module")
def run(lab, browser, tiny_gpt2_path, screenshots):
    """The notebook run in JupyterLab (light theme) and saved; yields the live page."""
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in _cells(f"local:{tiny_gpt2_path}")]
    nbformat.write(notebook, lab.root / "keep.ipynb")
    lab.set_theme("JupyterLab Light")
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.add_init_script(ACCEPT_KERNEL)
    page = context.new_page()
    _console_recorder(page)
    try:
        page.goto(lab.notebook_url("keep.ipynb"))
        _wait_idle(page)
        run_all(page)
        page.wait_for_selector(".lmnb-heatmap tbody .lmnb-row", timeout=120_000)
        page.wait_for_function("document.querySelectorAll('.lmnb-tokens').length >= 2")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
    except Exception:
        page.screenshot(path=str(screenshots / "failure-keep.png"), full_page=True)
        print("\n".join(page.messages))
        raise
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshots / "lab-light-run.png"), full_page=True)
    yield page
    context.close()


def test_copy_gives_exactly_the_generated_text(run, expected):
    view = run.locator(".lmnb-tokens").nth(0)
    text = "".join(t.text for t in expected["story"].tokens)
    assert "\n" in text or " " in text
    shown = view.locator(".lmnb-sequence-tokens").inner_text()
    assert "·" not in shown and "↵" not in shown  # natural text by default
    view.locator(".lmnb-sequence-tokens").evaluate("""el => {
        const range = document.createRange(); range.selectNodeContents(el);
        const selection = getSelection(); selection.removeAllRanges(); selection.addRange(range);
    }""")
    run.keyboard.press("Control+C")
    assert run.evaluate("navigator.clipboard.readText()") == text
    # with whitespace marks shown, a copy still gives the text itself
    view.locator(".lmnb-toggle").click()
    assert "·" in view.locator(".lmnb-sequence-tokens").inner_text()
    view.locator(".lmnb-sequence").first.evaluate("""el => {
        const range = document.createRange(); range.selectNodeContents(el);
        const selection = getSelection(); selection.removeAllRanges(); selection.addRange(range);
    }""")
    run.keyboard.press("Control+C")
    assert run.evaluate("navigator.clipboard.readText()") == text  # no label, no prompt
    view.locator(".lmnb-toggle").click()
    run.evaluate("getSelection().removeAllRanges()")


def test_one_log_probability_has_one_colour_in_every_view(run, expected):
    tokens = run.locator(".lmnb-tokens").nth(0).locator(".lmnb-token")
    story = expected["story"].tokens
    assert tokens.count() == len(story)
    shown = tokens.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert shown == [_rgb(logprob_colour(t.logprob)[0]) for t in story]
    cells = run.locator(".lmnb-heatmap .lmnb-cell")
    logprobs = np.concatenate(expected["scores"].token_scores).tolist()
    shown = cells.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert shown == [_rgb(logprob_colour(lp)[0]) for lp in logprobs]


def test_tooltip_near_the_bottom_right_stays_inside_the_output_area(run, screenshots):
    """Inside the output area wherever the area has room for it beside the token; in an
    area too short for that, inside the visible notebook (never clipped), and never over
    the token (js/src/view.js, Tooltip.place)."""
    view = run.locator(".lmnb-tokens").nth(0)
    boxes = view.locator(".lmnb-token").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); "
        "return [r.right + r.bottom, r.width, e.getClientRects().length]; })")
    corner = max((i for i, (_, width, lines) in enumerate(boxes) if width > 4 and lines == 1),
                 key=lambda i: boxes[i][0])
    token = view.locator(".lmnb-token").nth(corner)
    token.scroll_into_view_if_needed()
    token.hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")

    def box(locator, selector="el"):
        return locator.evaluate(f"el => {{ const r = ({selector}).getBoundingClientRect(); "
                                "return [r.left, r.top, r.right, r.bottom]; }")

    area = box(view, "el.closest('.jp-OutputArea-output')")
    panel = box(view, "el.closest('.jp-WindowedPanel-outer, .jp-NotebookPanel')")
    tip, anchor = box(tooltip), box(token)
    height = tip[3] - tip[1]
    room = max(area[3] - anchor[3], anchor[1] - area[1])  # beside the token, in the area
    inside = area if room >= height + 8 else panel
    assert inside[0] <= tip[0] and inside[1] <= tip[1] and tip[2] <= inside[2] \
        and tip[3] <= inside[3], (inside, tip)
    assert area[0] <= tip[0] and tip[2] <= area[2], (area, tip)  # never past its sides
    assert tip[3] <= anchor[1] or tip[1] >= anchor[3], (anchor, tip)  # not over the token
    run.screenshot(path=str(screenshots / "token-view-tooltip-corner-light.png"),
                   clip=_box(area))
    run.mouse.move(0, 0)


def test_constrained_tooltip_lists_the_allowed_choices_first(run, expected, screenshots):
    view = run.locator(".lmnb-tokens").nth(1)
    first = expected["answer"].tokens[0]
    assert first.constrained_logprob is not None and first.allowed
    token = view.locator(".lmnb-token").first
    # coloured by its probability among the allowed tokens
    assert token.evaluate("e => getComputedStyle(e).backgroundColor") == \
        _rgb(logprob_colour(first.constrained_logprob)[0])
    token.hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    tables = tooltip.locator("table.lmnb-alternatives")
    assert "lmnb-allowed" in tables.first.get_attribute("class")  # allowed choices first
    allowed = [t.replace("·", " ") for t in
               tables.first.locator(".lmnb-alt-token").all_text_contents()]
    assert allowed == [a.text for a in first.allowed]
    assert all(any(c.startswith(a) for c in CHOICES) for a in allowed)  # prefixes of choices
    percent = f"{100 * math.exp(first.constrained_logprob):.1f}%"
    assert f"p {percent} among the allowed tokens" in tooltip.text_content() or \
        f"{100 * math.exp(first.constrained_logprob):.2f}%" in tooltip.text_content()
    box = _box(view.evaluate("el => { const r = el.getBoundingClientRect(); "
                             "return [r.left, r.top, r.right, r.bottom]; }"))
    tip = tooltip.bounding_box()
    box["height"] = max(box["height"], tip["y"] + tip["height"] - box["y"] + 8)
    run.screenshot(path=str(screenshots / "constrained-tooltip-light.png"), clip=box)
    run.mouse.move(0, 0)


def test_no_console_messages_from_lmql_nb(run):
    assert _ours(run.messages) == []


@pytest.fixture(scope="module")
def saved(run, lab):
    """The notebook saved from the page, then the page closed and its kernel stopped."""
    run.locator(".jp-Notebook").first.click()
    run.keyboard.press("Control+S")
    path = lab.root / "keep.ipynb"
    for _ in range(100):
        notebook = nbformat.read(path, as_version=4)
        if any(o.get("output_type") == "display_data" for c in notebook.cells
               for o in c.get("outputs", [])) or any(
                c.get("outputs") and c.outputs[0].get("output_type") == "execute_result"
                for c in notebook.cells):
            break
        run.wait_for_timeout(200)
    run.close()
    request = urllib.request.Request(f"{lab.url}/api/sessions?token={lab.token}")
    for session in __import__("json").load(urllib.request.urlopen(request)):
        urllib.request.urlopen(urllib.request.Request(
            f"{lab.url}/api/sessions/{session['id']}?token={lab.token}", method="DELETE"))
    return path


def test_saved_outputs_keep_the_static_rendering_and_the_text(saved, expected):
    notebook = nbformat.read(saved, as_version=4)
    outputs = [o for c in notebook.cells for o in c.get("outputs", []) if "data" in o]
    ours = [o for o in outputs if "lmql_nb" in o.get("metadata", {})]
    assert len(ours) == 3
    for output in ours:
        assert "application/vnd.jupyter.widget-view+json" not in output["data"]
        assert "<script" not in output["data"]["text/html"]
    assert ours[0]["data"]["text/plain"] == expected["story"].text
    assert ours[1]["data"]["text/plain"] == expected["answer"].text


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_reopened_notebook_shows_every_output(saved, lab, browser, expected, screenshots, theme):
    lab.set_theme(theme)
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    context.add_init_script(ACCEPT_KERNEL)
    page = context.new_page()
    _console_recorder(page)
    try:
        page.goto(lab.notebook_url("keep.ipynb"))
        _wait_idle(page)  # a fresh kernel: none of the widgets' models exist
        page.wait_for_selector(".lmnb-static")
        page.wait_for_timeout(1500)
        body = page.locator(".jp-Notebook").inner_text()
        assert "model not found" not in body.lower() and "Error displaying widget" not in body
        static = page.locator(".jp-OutputArea-output .lmnb-static")
        assert static.count() == 3
        spans = static.nth(0).locator("span[title^='p ']")
        texts = spans.evaluate_all("els => els.map(e => e.textContent)")
        assert [literal(t) for t in texts] == [t.text for t in expected["story"].tokens]
        shown = spans.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
        assert shown == [_rgb(logprob_colour(t.logprob)[0]) for t in expected["story"].tokens]
        heatmap = static.nth(2)
        for _value, total in zip(VALUES, expected["scores"].scores("sum")):
            assert f"{total:.4f}".replace("-", "−") in heatmap.inner_text()
        suffix = "dark" if "Dark" in theme else "light"
        page.screenshot(path=str(screenshots / f"lab-reopened-{suffix}.png"), full_page=True)
        assert _ours(page.messages) == []
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()


def test_nbconvert_html_has_text_colours_and_numbers_without_script(saved, expected, tmp_path):
    from bs4 import BeautifulSoup

    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                    "--output-dir", str(tmp_path), str(saved)], check=True,
                   capture_output=True, timeout=120)
    page = (tmp_path / "keep.html").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in page
    statics = BeautifulSoup(page, "html.parser").select("div.lmnb-static")
    assert len(statics) == 3 and not any(s.find("script") for s in statics)  # HTML, no script
    story, answer, heatmap = statics
    spans = story.select("span[title^='p ']")
    assert [literal(s.get_text()) for s in spans] == [t.text for t in expected["story"].tokens]
    assert [re.search(r"background-color: (#[0-9a-f]{6})", s["style"]).group(1) for s in spans] \
        == [logprob_colour(t.logprob)[0] for t in expected["story"].tokens]
    first = expected["answer"].tokens[0]
    assert f"background-color: {logprob_colour(first.constrained_logprob)[0]}" in \
        answer.select("span[title^='p ']")[0]["style"]
    for total in expected["scores"].scores("sum"):
        assert f"{total:.4f}".replace("-", "−") in heatmap.get_text()


def _box(rect, margin=8):
    left, top, right, bottom = rect
    return {"x": max(0, left - margin), "y": max(0, top - margin),
            "width": right - left + 2 * margin, "height": bottom - top + 2 * margin}
