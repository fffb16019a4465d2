"""Nested queries, decorators and tool calls in the trace view's page, in Chromium: the
traces come from real programs on the tiny model (and Gemma, for the 30 steps). A nested query is a collapsible box
headed by its call (marked hidden when its text was taken out again) holding what the
inner query added; decorators and tools are chips of their own; a 30-step tool loop
stays within the page's width. Screenshots in light and dark."""

from __future__ import annotations

import pytest
from test_widgets_in_lab import literal

import lmql_nb
from lmql_nb.notebook.views import TraceView
from lmql_nb.query import NestedSegment

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def results(tiny_gpt2_path, gemma):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")

    @lmql_nb.query
    def think():
        '''lmql
        "Let's think.[R]" where len(TOKENS(R)) < 5
        return R.strip()
        '''

    @lmql_nb.query
    def one_of(choices: list):
        '''lmql
        "Among {choices}: [ANSWER]" where ANSWER in choices
        return ANSWER
        '''

    def shout(value):
        return value.upper()

    def calc(i):
        return i * i

    nested = lmql_nb.run_sync('''
        "Q: What is it? [A: think]\\n"
        "Pick: [B: one_of(['yes', 'no'])]\\n"
        "Say:[@shout C]" where len(TOKENS(C)) < 4
        "\\nScript: {SCRIPT_TEXT}"
    ''', think=think, one_of=one_of, shout=shout, SCRIPT_TEXT=SCRIPT, model=llm)
    loop = lmql_nb.run_sync('''
        "Squares, one per line:\\n"
        for i in range(30):
            "{i} squared is[X]" where len(TOKENS(X)) < 3
            " = {calc(i)}\\n"
    ''', calc=calc, model=gemma)  # 30 steps need more context than the tiny model's
    return nested, loop


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.route("http*://**", lambda route: route.abort())
    yield page
    context.close()


def opened(page, tmp_path, result):
    path = TraceView(result).save_html(tmp_path / "trace.html", title="nested")
    page.goto(path.as_uri())
    page.wait_for_selector(".lmnb-trace")
    return page


def test_nested_queries_are_collapsible_boxes_with_what_they_saw(page, tmp_path, results):
    nested, _ = results
    opened(page, tmp_path, nested)
    boxes = page.locator("details.lmnb-nested")
    assert boxes.count() == 2
    assert [literal(t) for t in boxes.locator(".lmnb-nested-query").all_text_contents()] == \
        ["think()", "one_of(['yes', 'no'])"]
    assert boxes.locator(".lmnb-nested-badge").count() == 2  # both returned: hidden
    first = boxes.first
    assert first.evaluate("el => el.open") is False  # closed once the program is done
    inner_hole = first.locator(".lmnb-hole[data-name='R']")
    assert not inner_hole.is_visible()
    first.locator("summary").click()
    assert inner_hole.is_visible()
    segment = nested.trace.segments[1]
    assert isinstance(segment, NestedSegment)
    tokens = inner_hole.locator(".lmnb-token").all_text_contents()
    assert [literal(t) for t in tokens] == [t.text for t in segment.trace.holes()[0].tokens]
    # what the outer prompt kept: the returned values, as holes of the outer row
    kept = page.locator(".lmnb-hole-nested .lmnb-hole-value").all_text_contents()
    assert [literal(t) for t in kept] == [nested.variables["A"], nested.variables["B"]]


def test_decorator_and_tool_steps_and_literal_text(page, tmp_path, results):
    nested, loop = results
    opened(page, tmp_path, nested)
    step = page.locator(".lmnb-step-decorator")
    assert step.count() == 1 and literal(step.locator(".lmnb-step-label").text_content()) == \
        "@shout"
    assert page.locator(".lmnb-hole[data-name='C'] .lmnb-hole-value").text_content() == \
        nested.variables["C"]
    assert SCRIPT in literal(page.locator(".lmnb-trace-text").text_content())
    assert page.locator(".lmnb script").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_a_30_step_tool_loop_stays_readable(page, tmp_path, results, screenshots):
    _, loop = results
    opened(page, tmp_path, loop)
    chips = page.locator(".lmnb-step-tool")
    assert chips.count() == 30
    assert [literal(t) for t in page.locator(".lmnb-step-text").all_text_contents()] == \
        [f"{i * i}" for i in range(30)]
    row = page.locator(".lmnb-trace-row")
    assert row.evaluate("el => el.scrollWidth <= el.clientWidth + 1")  # no sideways scroll
    heights = chips.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    line = page.locator(".lmnb-trace-prompt").first.evaluate(
        "el => parseFloat(getComputedStyle(el.parentElement).lineHeight) || 24")
    assert max(heights) <= line * 1.5  # a chip fits its line: lines do not grow apart
    assert "30 holes filled" in page.locator(".lmnb-status").text_content()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots(page, tmp_path, screenshots, results, scheme):
    nested, loop = results
    page.emulate_media(color_scheme=scheme)
    opened(page, tmp_path, [nested])
    page.locator("details.lmnb-nested summary").first.click()
    page.locator(".lmnb-trace").screenshot(path=str(screenshots / f"trace-nested-{scheme}.png"))
    opened(page, tmp_path, loop)
    page.locator(".lmnb-trace").screenshot(path=str(screenshots / f"trace-tools-{scheme}.png"))
    assert page.errors == []
