"""The trace view's `to_html()` page in Chromium (no kernel, no network): holes labelled
with their names, tokens coloured with alternatives on hover, distributions as bars, one
row per sample, model text shown literally. Screenshots in light and dark."""

from __future__ import annotations

import pytest
from test_widgets_in_lab import literal

from lmql_nb import Alternative, TokenInfo
from lmql_nb.notebook.views import TraceView
from lmql_nb.query import DistributionSegment, HoleSegment, LMQLResult, TextSegment, Trace

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"


def token(token_id, text, logprob, top=()):
    return TokenInfo(token_id, text, logprob, 1, 0.8, tuple(top))


def _results():
    thought = HoleSegment("THOUGHT", " France's capital is Paris.", (
        token(11, " France's", -0.4, [Alternative(11, " France's", -0.4),
                                      Alternative(12, SCRIPT, -1.6)]),
        token(12, " capital", -0.1),
        token(13, " is", -0.05),
        token(14, " Paris", -2.3, [Alternative(15, " Lyon", -0.5), Alternative(14, " Paris", -2.3)]),
        token(15, ".", -0.9),
    ))
    answer = HoleSegment("ANSWER", SCRIPT, (token(21, "<script>", -3.0),
                                            token(22, "alert(1)", -1.0),
                                            token(23, "</script>", -0.2)))
    mood = DistributionSegment("MOOD", (" sure", " unsure", IMG), (0.62, 0.30, 0.08), " sure")
    first = Trace([TextSegment("Q: What is the capital of France?\nThink: "), thought,
                   TextSegment("\nA:"), answer, TextSegment("\nConfidence:"), mood])
    second = Trace([TextSegment("Q: What is the capital of France?\nThink: "),
                    HoleSegment("THOUGHT", " Hmm", (token(31, " Hmm", -4.2),)),
                    TextSegment("\nA:"),
                    HoleSegment("ANSWER", " Paris", (token(32, " Paris", -0.3),))])
    return [LMQLResult(t.prompt, {}, trace=t) for t in (first, second)]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.route("http*://**", lambda route: route.abort())
    yield page
    context.close()


@pytest.fixture
def opened(page, tmp_path):
    results = _results()
    path = TraceView(results).save_html(tmp_path / "trace.html", title=SCRIPT)
    page.goto(path.as_uri())
    page.wait_for_selector(".lmnb-trace")
    return page, results


def test_rows_and_labelled_holes(opened):
    page, results = opened
    rows = page.locator(".lmnb-trace-row")
    assert rows.count() == 2
    for r, result in enumerate(results):
        row = rows.nth(r)
        names = row.locator(".lmnb-hole-name").all_text_contents()
        assert names == [s.name for s in result.trace.segments if not isinstance(s, TextSegment)]
        # the row reads as the whole prompt, in order (labels aside)
        shown = row.locator(".lmnb-trace-text").evaluate(
            "el => [...el.childNodes].map(n => n.classList?.contains('lmnb-hole') ? "
            "[...n.childNodes].filter(c => !c.classList.contains('lmnb-hole-name'))"
            ".map(c => c.textContent).join('') : n.textContent).join('')")
        assert literal(shown) == result.prompt
    tokens = rows.nth(0).locator(".lmnb-hole[data-name='THOUGHT'] .lmnb-token")
    assert [literal(t) for t in tokens.all_text_contents()] == \
        [t.text for t in results[0].trace.segments[1].tokens]
    colours = tokens.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) > 1  # coloured by probability
    assert page.locator(".lmnb-trace-score").first.text_content() == "logprob −7.950"


def test_hover_shows_alternatives(opened, screenshots):
    page, results = opened
    paris = page.locator(".lmnb-hole[data-name='THOUGHT'] .lmnb-token").nth(3)
    paris.hover()
    tooltip = page.locator(".lmnb-tooltip")
    tooltip.wait_for(state="visible")
    alternatives = [literal(t) for t in tooltip.locator(".lmnb-alt-token").all_text_contents()]
    assert alternatives == [" Lyon", " Paris"]
    assert "lmnb-chosen" in tooltip.locator(".lmnb-alternative").nth(1).get_attribute("class")
    assert "60.7%" in tooltip.text_content()  # exp(-0.5), the alternative Lyon
    page.screenshot(path=str(screenshots / "trace-view-hover-light.png"))


def test_distribution_bars(opened):
    page, results = opened
    bars = page.locator(".lmnb-distribution[data-name='MOOD'] .lmnb-distribution-value")
    assert bars.count() == 3
    widths = bars.locator(".lmnb-prob-fill").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width / "
        "e.parentElement.getBoundingClientRect().width)")
    assert widths == pytest.approx([0.62, 0.30, 0.08], abs=0.01)
    assert [literal(t) for t in bars.locator(".lmnb-col-value").all_text_contents()] == \
        [" sure", " unsure", IMG]
    assert "lmnb-argmax" in bars.nth(0).get_attribute("class")
    chip = page.locator(".lmnb-hole-distribution[data-name='MOOD']")
    assert literal(chip.locator(".lmnb-hole-value").text_content()) == " sure"


def test_model_text_is_literal(opened):
    page, results = opened
    answer = page.locator(".lmnb-trace-row").first.locator(".lmnb-hole[data-name='ANSWER']")
    assert literal("".join(answer.locator(".lmnb-token").all_text_contents())) == SCRIPT
    page.locator(".lmnb-hole[data-name='THOUGHT'] .lmnb-token").first.hover()
    assert SCRIPT in literal(page.locator(".lmnb-tooltip").text_content())
    assert page.locator(".lmnb script, .lmnb img").count() == 0
    assert page.title() == SCRIPT
    assert page.dialogs == [] and page.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots(page, tmp_path, screenshots, scheme):
    page.emulate_media(color_scheme=scheme)
    path = TraceView(_results()).save_html(tmp_path / "trace.html")
    page.goto(path.as_uri())
    page.wait_for_selector(".lmnb-trace")
    page.locator(".lmnb-trace").screenshot(path=str(screenshots / f"trace-view-page-{scheme}.png"))
    assert page.errors == []


@pytest.fixture(scope="module")
def chat_result(chat_path):
    """A real chat program on the tiny chat model: REASONING is internal, ANSWER is the
    `@message` the chat's user sees. It runs in a thread of its own: Playwright's sync API
    marks an event loop as running in this one while the module's browser is open."""
    from concurrent.futures import ThreadPoolExecutor

    import lmql_nb
    from lmql_nb.lib.chat import message

    program = ('''argmax
    "{:user} The capital of France is"
    "{:assistant} Reasoning:[REASONING]" where len(TOKENS(REASONING)) < 3
    "{:assistant} Answer: [@message ANSWER]" where len(TOKENS(ANSWER)) < 3
''')
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lmql_nb.run_sync, program, message=message, cache=False,
                           model=lmql_nb.model(f"local:{chat_path}")).result()


def test_the_hole_the_chat_user_sees_is_tagged(page, tmp_path, chat_result):
    """`[@message ANSWER]` carries the "message" tag, REASONING none."""
    path = TraceView(chat_result).save_html(tmp_path / "chat.html")
    page.goto(path.as_uri())
    page.wait_for_selector(".lmnb-trace")
    tagged = page.locator(".lmnb-hole-message")
    assert tagged.count() == 1 and tagged.get_attribute("data-name") == "ANSWER"
    assert tagged.locator(".lmnb-hole-tag").text_content() == "message"
    assert page.locator(".lmnb-hole[data-name='REASONING'] .lmnb-hole-tag").count() == 0
    assert page.errors == []
