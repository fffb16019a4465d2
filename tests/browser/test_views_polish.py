"""What a user sees, in a real JupyterLab in Chromium (light and dark; 1300 and 900 px):
tooltips placed where they fit in the visible part of the notebook, at its top edge too
(the comparison view's difference line included); a newline-only hole that shows a mark
and can be hovered; whitespace mode at 900 px breaking lines only at whitespace; a cached
re-run saying so; one count of finished holes in the header and in the interrupt's
message; and, reopened without a kernel, the static trace with its hole names and
distribution bars. Expected values come from this process's own calls on the same tiny
models. Screenshots under artifacts/screenshots/ (views-*)."""

from __future__ import annotations

import json
import re
import urllib.request

import nbformat
import pytest
from conftest import ACCEPT_KERNEL, run_all
from test_widgets_in_lab import literal

WORDS = r"( [a-z]{3,8}){30}"  # a generation of short words: lines can break between them
THEMES = ["JupyterLab Light", "JupyterLab Dark"]


def _cells(model: str, other: str) -> list[str]:
    return [
        f"import uuid\nimport lmql_nb\nm = lmql_nb.model({model!r})\n"
        "_ = m.generate_sync('x', max_tokens=1)\ntag = uuid.uuid4().hex[:8]",
        f"%load_ext lmql_nb\n%config LmqlMagics.model = {model!r}\n"
        "%config LmqlMagics.update_interval = 0.01",
        # 2: the first view, at the notebook's top edge
        "%%lmql_generate --max-tokens 16\nThe harbour",
        # 3: two tokenizers: the comparison view
        f"c = lmql_nb.compare_sync('The harbour', ' is a quiet place to live', "
        f"[m, lmql_nb.model({other!r})], labels=['gpt2', 'llama'])\nlmql_nb.show(c)",
        # 4: a newline-only hole, and a distribution
        '%%lmql -o steps\nargmax\n    "Step 1:[STEP]" where STEP in ["\\n", "\\n\\n"]\n'
        '    "Mood:[MOOD]"\ndistribution\n    MOOD in [" good", " bad"]\n',
        # 5: short words, for line breaking
        f"%%lmql_generate --max-tokens 110 --regex '{WORDS}'\nWords:",
        # 6, 7: the same generation twice (a prompt no other run cached): the second is cached
        "%%lmql_generate --max-tokens 8\nHarbour {tag}",
        "%%lmql_generate --max-tokens 8\nHarbour {tag}",
        # 8: interrupted while it waits after two holes (a prompt no run cached: streamed)
        '%%lmql\n"{tag} A:[A]" where len(TOKENS(A)) < 50\n"\\nB:[B]" where len(TOKENS(B)) < 50\n'
        "import time\ntime.sleep(120)\n",
    ]


# records, from before the run, each trace header with the holes then drawn as finished
RECORD_COUNTS = """() => {
  window.__counts = [];
  new MutationObserver(() => {
    const views = document.querySelectorAll('.lmnb-trace');
    const view = views[views.length - 1];
    if (!view || !view.querySelector('.lmnb-hole[data-name="A"]')) return;
    const closed = view.querySelectorAll('.lmnb-hole:not(.lmnb-hole-open)').length;
    const open = view.querySelectorAll('.lmnb-hole.lmnb-hole-open').length;
    const header = view.querySelector('.lmnb-status').textContent;
    const last = window.__counts[window.__counts.length - 1];
    if (!last || last.header !== header || last.closed !== closed)
      window.__counts.push({header, closed, open});
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def expected(tiny_gpt2_path):
    import lmql_nb

    m = lmql_nb.model(f"local:{tiny_gpt2_path}")
    words = m.generate_sync("Words:", max_tokens=110, regex=WORDS, return_details=True)
    return {"words": words, "top": m.generate_sync("The harbour", max_tokens=16,
                                                   return_details=True)}


def _open(lab, browser, name, theme, width):
    lab.set_theme(theme)
    # every cell in the page (JupyterLab's windowing would detach those scrolled away)
    folder = lab.settings / "@jupyterlab" / "notebook-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.add_init_script(ACCEPT_KERNEL)
    page = context.new_page()
    page.messages = []
    page.on("pageerror", lambda error: page.messages.append(str(error)))
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.wait_for_timeout(800)
    return context, page


def _interrupt(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Interrupt Kernel").first.click()


@pytest.fixture(scope="module", params=THEMES)
def run(request, lab, browser, tiny_gpt2_path, tiny_llama_path, screenshots):
    """The notebook run top to bottom in one theme, the last cell interrupted once it has
    filled its two holes, then saved; yields (page, theme suffix)."""
    theme = request.param
    name = f"polish-{theme.split()[-1].lower()}.ipynb"
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in
                      _cells(f"local:{tiny_gpt2_path}", f"local:{tiny_llama_path}")]
    nbformat.write(notebook, lab.root / name)
    context, page = _open(lab, browser, name, theme, 1300)
    suffix = "dark" if "Dark" in theme else "light"
    try:
        page.evaluate(RECORD_COUNTS)
        run_all(page)
        # the last program has filled both holes and sleeps: interrupt it
        page.wait_for_function(
            "() => [...document.querySelectorAll('.lmnb-trace')].some(v => "
            "v.querySelector('.lmnb-hole[data-name=\"B\"]') && "
            "/2 holes filled/.test(v.querySelector('.lmnb-status').textContent))",
            timeout=180_000)
        page.wait_for_timeout(500)
        _interrupt(page)
        page.wait_for_function(
            "() => /interrupted: kept/.test(document.querySelector('.jp-Notebook').innerText)",
            timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
    except Exception:
        page.screenshot(path=str(screenshots / f"failure-polish-{suffix}.png"), full_page=True)
        context.close()
        raise
    page.mouse.move(0, 0)
    yield page, suffix
    context.close()


def _rect(locator, selector="el"):
    return locator.evaluate(f"el => {{ const r = ({selector}).getBoundingClientRect(); "
                            "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }")


def _clip(*rects, margin=8):
    left = max(0, min(r["left"] for r in rects) - margin)
    top = max(0, min(r["top"] for r in rects) - margin)
    right = max(r["right"] for r in rects) + margin
    bottom = max(r["bottom"] for r in rects) + margin
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def _scroll_to_top_edge(page, element):
    """Scroll the notebook so that `element` sits just below the top of its visible part
    (under JupyterLab's toolbar)."""
    element.evaluate("""el => {
      const scroller = el.closest('.jp-WindowedPanel-outer') || el.closest('.jp-NotebookPanel-notebook');
      scroller.scrollTop += el.getBoundingClientRect().top - scroller.getBoundingClientRect().top - 2;
    }""")
    page.wait_for_timeout(300)


def _inside(inner, outer, slack=0.5):
    return (inner["left"] >= outer["left"] - slack and inner["top"] >= outer["top"] - slack
            and inner["right"] <= outer["right"] + slack
            and inner["bottom"] <= outer["bottom"] + slack)


def test_a_tooltip_at_the_top_edge_opens_below_inside_the_visible_notebook(run, expected,
                                                                            screenshots):
    page, suffix = run
    view = page.locator(".lmnb-tokens").nth(0)
    token = view.locator(".lmnb-token").nth(1)
    _scroll_to_top_edge(page, token)
    token.hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    tip, anchor = _rect(tooltip), _rect(token)
    visible = _rect(view, "el.closest('.jp-WindowedPanel-outer, .jp-NotebookPanel-notebook')")
    toolbar = _rect(page.locator(".jp-NotebookPanel-toolbar").first)
    assert anchor["top"] - visible["top"] < 20  # the token is at the top edge
    assert tip["top"] >= anchor["bottom"]  # no room above: below the token
    assert _inside(tip, visible) and tip["top"] >= toolbar["bottom"], (tip, visible, toolbar)
    # its header (token, p, logprob, rank, entropy) is what would have been cut off
    head = _rect(tooltip.locator(".lmnb-tip-head"))
    assert _inside(head, visible)
    stats = tooltip.locator(".lmnb-tip-stats").first.text_content()
    assert "logprob" in stats and "rank" in stats and "entropy" in stats
    assert [literal(t) for t in tooltip.locator(".lmnb-alt-token").all_text_contents()] == \
        [a.text for a in expected["top"].tokens[1].top]
    page.screenshot(path=str(screenshots / f"views-tooltip-top-edge-{suffix}.png"),
                    clip=_clip(toolbar, tip, anchor))
    page.mouse.move(0, 0)


def test_the_comparison_tooltip_keeps_its_difference_line_at_the_top_edge(run, screenshots):
    page, suffix = run
    view = page.locator(".lmnb-comparison").first
    segment = view.locator(".lmnb-segment").nth(1)
    _scroll_to_top_edge(page, segment)
    segment.hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    visible = _rect(view, "el.closest('.jp-WindowedPanel-outer, .jp-NotebookPanel-notebook')")
    line = tooltip.locator(".lmnb-tip-stats").first
    assert line.text_content().startswith("difference ")
    assert _inside(_rect(line), visible) and _inside(_rect(tooltip), visible)
    page.screenshot(path=str(screenshots / f"views-comparison-tooltip-top-edge-{suffix}.png"),
                    clip=_clip(_rect(tooltip), _rect(segment)))
    page.mouse.move(0, 0)


def test_a_newline_only_hole_shows_a_mark_and_can_be_hovered(run, screenshots):
    page, suffix = run
    view = page.locator(".lmnb-trace").nth(0)
    hole = view.locator(".lmnb-hole[data-name='STEP']")
    assert hole.locator(".lmnb-hole-name").text_content() == "STEP"
    token = hole.locator(".lmnb-token")
    assert token.count() >= 1
    assert "↵" in token.first.text_content()  # the mark, with the toggle off
    box = _rect(token.first)
    assert box["right"] - box["left"] >= 4 and box["bottom"] - box["top"] >= 8
    token.first.scroll_into_view_if_needed()
    token.first.hover()
    tooltip = view.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    assert literal(tooltip.locator(".lmnb-tip-token").first.text_content()) in ("\n", "\n\n")
    page.screenshot(path=str(screenshots / f"views-newline-hole-{suffix}.png"),
                    clip=_clip(_rect(view), _rect(tooltip)))
    page.mouse.move(0, 0)
    # and the trace view has the whitespace toggle
    toggle = view.locator(".lmnb-toggle", has_text="whitespace")
    toggle.click()
    assert "·" in view.locator(".lmnb-trace-prompt").first.text_content()  # "Step·1:"
    toggle.click()


def test_a_cached_rerun_says_it_came_from_the_cache(run, screenshots):
    page, suffix = run
    first, second = page.locator(".lmnb-tokens").nth(2), page.locator(".lmnb-tokens").nth(3)
    assert first.locator(".lmnb-prompt-tail").text_content().startswith("Harbour ")
    computed = first.locator(".lmnb-toolbar .lmnb-status").text_content()
    cached = second.locator(".lmnb-toolbar .lmnb-status").text_content()
    assert "tokens/s" in computed and "cache" not in computed, computed
    assert re.search(r"from the result cache \(computed (<1|\d+) s ago\)", cached), cached
    assert "tokens/s" not in cached
    assert [literal(t) for t in first.locator(".lmnb-token").all_text_contents()] == \
        [literal(t) for t in second.locator(".lmnb-token").all_text_contents()]
    second.screenshot(path=str(screenshots / f"views-cached-rerun-{suffix}.png"))


def test_one_count_of_finished_holes_in_the_header_and_the_interrupt(run, screenshots):
    page, suffix = run
    view = page.locator(".lmnb-trace").last
    header = view.locator(".lmnb-toolbar .lmnb-status").text_content()
    assert "2 holes filled" in header and "interrupted" in header, header
    cell = page.locator(".jp-Notebook .jp-Cell").nth(8)  # the program's cell
    assert "interrupted: kept 2 holes" in cell.inner_text()
    # while it ran, the header never counted a hole still being generated
    counts = page.evaluate("window.__counts")
    assert any(c["open"] for c in counts), counts  # a hole was seen generating
    for c in counts:
        shown = re.search(r"(\d+) holes? filled", c["header"])
        assert shown and int(shown.group(1)) == c["closed"], c
    view.screenshot(path=str(screenshots / f"views-interrupted-{suffix}.png"))


def test_whitespace_mode_at_900_px_breaks_lines_only_at_whitespace(run, lab, browser, expected,
                                                                   screenshots):
    page, suffix = run
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_timeout(500)
    view = page.locator(".lmnb-tokens").nth(1)
    text = view.locator(".lmnb-sequence-text")
    text.scroll_into_view_if_needed()
    assert [literal(t) for t in view.locator(".lmnb-token").all_text_contents()] == \
        [t.text for t in expected["words"].tokens]
    for mode in ("natural", "whitespace"):
        if mode == "whitespace":
            view.locator(".lmnb-toggle", has_text="whitespace").click()
            page.wait_for_timeout(200)
        breaks = text.evaluate(LINE_BREAKS)
        assert breaks["lines"] >= 2, (mode, breaks)  # the text wraps at this width
        assert breaks["inside_words"] == [], (mode, breaks)
        view.screenshot(path=str(screenshots / f"views-wrap-900-{mode}-{suffix}.png"))
    view.locator(".lmnb-toggle", has_text="whitespace").click()
    page.set_viewport_size({"width": 1300, "height": 1000})


# each place where a line wraps, with the characters on either side (marks read as the
# text they stand for): a wrap between two non-space characters is a break inside a word
LINE_BREAKS = """el => {
  const chars = [];
  const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    const raw = node.parentElement.closest('[data-raw]')?.dataset.raw;
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getBoundingClientRect();
      if (rect.width === 0 && rect.height === 0) continue;
      chars.push({ch: raw ?? node.data[i], top: Math.round(rect.top)});
    }
  }
  const inside = [];
  let lines = 1;
  for (let k = 1; k < chars.length; k++) {
    if (chars[k].top > chars[k - 1].top + 4) {
      lines++;
      if (!/\\s/.test(chars[k - 1].ch) && !/\\s/.test(chars[k].ch))
        inside.push(chars.slice(Math.max(0, k - 6), k).map(c => c.ch).join('') + '|'
                    + chars.slice(k, k + 6).map(c => c.ch).join(''));
    }
  }
  return {lines, inside_words: inside};
}"""


@pytest.fixture(scope="module")
def saved(run, lab):
    """The run's notebook saved, its page closed and its kernel stopped."""
    page, suffix = run
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+S")
    path = lab.root / f"polish-{suffix}.ipynb"
    for _ in range(100):
        notebook = nbformat.read(path, as_version=4)
        if any(c.get("outputs") for c in notebook.cells):
            break
        page.wait_for_timeout(200)
    page.wait_for_timeout(500)
    for session in json.load(urllib.request.urlopen(
            f"{lab.url}/api/sessions?token={lab.token}")):
        urllib.request.urlopen(urllib.request.Request(
            f"{lab.url}/api/sessions/{session['id']}?token={lab.token}", method="DELETE"))
    return path, suffix


def test_the_reopened_static_trace_shows_hole_names_and_distribution_bars(saved, lab, browser,
                                                                          screenshots):
    path, suffix = saved
    theme = "JupyterLab Dark" if suffix == "dark" else "JupyterLab Light"
    context, page = _open(lab, browser, path.name, theme, 1300)
    try:
        page.wait_for_selector(".lmnb-static")
        page.wait_for_timeout(1000)
        assert "model not found" not in page.locator(".jp-Notebook").inner_text().lower()
        static = page.locator(".jp-OutputArea-output .lmnb-static",
                              has_text="Step")
        assert static.count() == 1
        text = static.inner_text()
        # the hole names as visible chips, the newline hole as a mark
        for name in ("STEP", "MOOD"):
            chip = static.locator("span", has_text=re.compile(f"^{name}$")).first
            assert chip.is_visible()
        assert "↵" in text
        # P(MOOD) as bars: two rows, widths proportional to the probabilities
        assert "P(MOOD)" in text
        bars = static.locator("tr")
        assert bars.count() == 2
        widths = bars.evaluate_all(
            "rows => rows.map(r => { const fill = r.querySelector('span span'); "
            "return fill.getBoundingClientRect().width / "
            "fill.parentElement.getBoundingClientRect().width; })")
        shown = [float(re.search(r"([\d.]+)%", row).group(1)) / 100
                 for row in bars.all_inner_texts()]
        assert widths == pytest.approx(shown, abs=0.01)
        assert "2 holes filled" in page.locator(".lmnb-static").last.inner_text()
        static.screenshot(path=str(screenshots / f"views-reopened-static-trace-{suffix}.png"))
        assert page.messages == []
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()
