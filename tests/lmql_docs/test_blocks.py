"""blocks.json records every code block of LMQL's documentation pages, in page order, each
with a status and, unless it runs, a reason; and docs/lmql-docs-status.md is generated
from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blocks import PROGRAM_KINDS, all_blocks, page_blocks, PAGES
from harness import REASONS, STATUSES, load_record

ROOT = Path(__file__).resolve().parents[2]


def test_every_block_of_every_page_is_recorded_in_page_order():
    recorded = [(e["page"], e["index"], e["kind"], e["first_line"]) for e in load_record()]
    extracted = [(b.page, b.index, b.kind, b.first_line[:80]) for b in all_blocks()]
    assert recorded == extracted


def test_each_entry_has_a_status_and_a_reason_where_it_does_not_run():
    for entry in load_record():
        key = f"{entry['page']}#{entry['index']}"
        assert entry["status"] in STATUSES, key
        if entry["status"] == "runs":
            assert not entry["reason"], key
        elif entry["status"] == "fails":
            assert entry["reason"].startswith("error: "), key  # the exact error
            assert entry.get("cause"), f"{key}: why it fails"
        else:
            assert entry["reason"].split(":", 1)[0] in REASONS and \
                entry["reason"].split(":", 1)[1].strip(), key
        if entry["status"] != "set aside" or entry["reason"].startswith("fragment"):
            assert entry["kind"] in PROGRAM_KINDS or entry.get("as") == "lmql", \
                f"{key}: only programs run"


def test_the_extractor_reads_fences_languages_and_markup():
    """The first block of the overview page: a ```{lmql} block whose `name::` line is the
    documentation site's markup, not the program."""
    block = page_blocks(PAGES / "language-overview.md")[0]
    assert (block.kind, block.first_line) == ("lmql", "name::overview-query")
    cell = block.cell_source()
    assert cell.startswith("%%lmql\n# review to be analyzed\n")
    assert "name::" not in cell and cell.rstrip().endswith("CLS # positive")
    output = page_blocks(PAGES / "language-decorators.md")[8].cell_source()
    assert "model-output::" not in output and "PREFIX: This is a test]" not in output


def test_the_status_page_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "lmql_docs_table.py"),
                             "--check"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
