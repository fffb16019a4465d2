"""The dataset view (`score_many`'s `ScoringTable`) in Chromium, live and static."""

from __future__ import annotations

import numpy as np
import pytest

from lmql_nb import ScoringResult, ScoringTable
from lmql_nb.notebook.views import DatasetView
from lmql_nb.notebook.views.static import format_percent

XSS = "<img src=x onerror=alert(1)>"
LABELS = [" positive", " negative", " neutral"]


def _table(rows: int, gold: bool = True, finished: int | None = None) -> ScoringTable:
    rng = np.random.default_rng(3)
    prompts = [f"Review {i}: {XSS if i == 1 else 'the food was fine'}\nSentiment:"
               for i in range(rows)]
    results = [ScoringResult(p, LABELS, [[v] for v in LABELS], [[1], [2], [3]],
                             [[s] for s in rng.normal(-2.5, 2.0, size=3)], "tiny-model")
               if finished is None or i < finished else None
               for i, p in enumerate(prompts)]
    labels = [LABELS[i % 3] for i in range(rows)] if gold else None
    return ScoringTable(prompts, [LABELS] * rows, "tiny-model", labels, results)


def _page(browser, scheme):
    context = browser.new_context(viewport={"width": 1100, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    page.scheme = scheme
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.route("http*://**", lambda route: route.abort())
    return context, page


@pytest.fixture
def page(browser):
    context, page = _page(browser, "light")
    yield page
    context.close()


@pytest.fixture(params=["light", "dark"])
def themed_page(browser, request):
    context, page = _page(browser, request.param)
    yield page
    context.close()


def _open(page, widget, tmp_path, name):
    path = widget.save_html(tmp_path / f"{name}.html", title=name)
    page.goto(path.as_uri())
    page.wait_for_selector(".lmnb-dataset-table tbody tr")


def test_rows_values_argmax_accuracy_and_confusion(themed_page, tmp_path, screenshots):
    page = themed_page
    table = _table(12)
    _open(page, DatasetView(table), tmp_path, "dataset")
    rows = page.locator(".lmnb-dataset-table tbody tr")
    assert rows.count() == 12
    scores = np.array([r.scores() for r in table])
    for i in range(12):  # the starred cell is each row's best value
        best = rows.nth(i).locator(".lmnb-p.lmnb-best")
        assert best.count() == 1
        cells = rows.nth(i).locator("td.lmnb-col-p")
        assert cells.nth(int(scores[i].argmax())).locator(".lmnb-best").count() == 1
    probs = np.exp(scores[0]) / np.exp(scores[0]).sum()  # softmax across the row's values
    shown = [t.replace("★", "").strip() for t in rows.nth(0).locator(".lmnb-p").all_text_contents()]
    assert shown == [format_percent(p) for p in probs]
    correct = int((scores.argmax(1) == np.arange(12) % 3).sum())
    status = page.locator(".lmnb-dataset .lmnb-status").first.text_content()
    assert f"accuracy {100 * correct / 12:.1f}% ({correct} of 12)" in status
    confusion = page.locator(".lmnb-confusion-table tbody tr")
    counts = [[int(c) for c in confusion.nth(g).locator("td").all_text_contents()] for g in range(3)]
    assert np.array(counts).tolist() == table.confusion().values.tolist()
    assert page.locator(".lmnb-dataset img").count() == 0  # the prompt shows as text
    assert XSS in rows.nth(1).locator(".lmnb-prompt-cell").text_content()
    page.locator(".lmnb-p").first.hover()
    assert "logprob" in page.locator(".lmnb-tooltip").text_content()
    assert page.errors == [] and page.dialogs == []
    page.locator(".lmnb-dataset").screenshot(path=str(screenshots / f"dataset-{page.scheme}.png"))


def test_sorting_by_a_value_column(page, tmp_path):
    table = _table(30)
    _open(page, DatasetView(table), tmp_path, "sort")
    page.locator("th.lmnb-col-p").nth(1).click()  # " negative", highest first
    indices = [int(t) for t in page.locator("tbody .lmnb-row-index").all_text_contents()]
    negative = np.array([r.probs()[1] for r in table])
    assert indices == sorted(range(30), key=lambda i: (-negative[i], i))
    page.locator("th.lmnb-col-p").nth(1).click()  # and lowest first
    indices = [int(t) for t in page.locator("tbody .lmnb-row-index").all_text_contents()]
    assert indices == sorted(range(30), key=lambda i: (negative[i], i))


def test_a_long_table_draws_a_bounded_number_of_rows(page, tmp_path):
    _open(page, DatasetView(_table(2000, gold=False, finished=1500)), tmp_path, "long")
    assert page.locator(".lmnb-dataset-table tbody tr").count() == 500
    assert "showing 500 of 2000 rows" in page.locator(".lmnb-more").text_content()
    assert "1500 finished" in page.locator(".lmnb-dataset .lmnb-status").first.text_content()
    assert page.locator(".lmnb-confusion-table").count() == 0  # no gold, no confusion


def test_static_rendering_without_javascript(browser, tmp_path, screenshots):
    """What nbconvert and GitHub show: the same numbers, no script needed."""
    table = _table(8)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1100, "height": 700})
    page = context.new_page()
    html = DatasetView(table).static_html()
    page.set_content(f"<!DOCTYPE html><html><body>{html}</body></html>")
    assert page.locator("img").count() == 0
    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 8
    best = rows.nth(0).locator("td", has_text="★")
    assert best.count() == 1 and best.text_content().startswith("★ ")
    assert f"accuracy {100 * table.accuracy():.1f}%" in page.content()
    assert page.locator("table").count() == 2  # the rows and the confusion table
    page.screenshot(path=str(screenshots / "dataset-static.png"), full_page=True)
    context.close()
