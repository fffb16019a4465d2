"""Each page of LMQL's documentation runs from a notebook as blocks.json records: one
kernel per page (harness.py), each block a cell. A block recorded as running runs without
an error and so does its check (what the page shows, or the example's constraint, on
the notebook's variables); a failing one gives its recorded error; a fragment still
fails. Any difference fails the page's test, naming the blocks that changed."""

from __future__ import annotations

import pytest

from harness import build_docs_model, executed, expected, load_record, observed, run_page, same

ENTRIES = {f"{e['page']}#{e['index']}": e for e in load_record()}
PAGES = sorted({e["page"] for e in ENTRIES.values() if executed(e)})


@pytest.fixture(scope="session")
def docs_model(tmp_path_factory):
    return build_docs_model(tmp_path_factory.mktemp("docs-model"))


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_recorded(page, docs_model, tmp_path):
    results = run_page(page, ENTRIES, tmp_path, docs_model)
    assert set(results) == {key for key, e in ENTRIES.items()
                            if e["page"] == page and executed(e)}
    changed = {key: {"recorded": expected(ENTRIES[key]), "now": observed(result)}
               for key, result in results.items()
               if not same(expected(ENTRIES[key]), observed(result))}
    assert changed == {}, (f"{page}: blocks changed since blocks.json was recorded: "
                           f"{changed}; python scripts/lmql_docs_table.py --run records them")
