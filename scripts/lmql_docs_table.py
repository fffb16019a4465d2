"""docs/lmql-docs-status.md's tables, generated from the recorded run of LMQL's
documentation examples (tests/lmql_docs/blocks.json, which tests/lmql_docs checks a run
against).

    python scripts/lmql_docs_table.py --run    # run every page, record it, rewrite
    python scripts/lmql_docs_table.py --run lib-python.md   # only that page
    python scripts/lmql_docs_table.py          # rewrite the page from blocks.json
    python scripts/lmql_docs_table.py --check  # exit 1 if the page is out of date

`--run` records each block's outcome (runs, or fails with its error) in blocks.json;
set-aside blocks keep their reasons. The tables sit between `<!-- lmql-docs: NAME -->`
and `<!-- /lmql-docs -->` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from lmql_suite_table import render

ROOT = Path(__file__).resolve().parent.parent
DOCS_TIER = ROOT / "tests" / "lmql_docs"
RECORD = DOCS_TIER / "blocks.json"
STATUS = ROOT / "docs" / "lmql-docs-status.md"
MARKER = "lmql-docs"
CATEGORIES = ("not a program", "fragment", "network")


def load() -> list[dict]:
    """blocks.json: one entry per block of the pages, in page order."""
    return json.loads(RECORD.read_text())


def category(entry: dict) -> str:
    """A set-aside block's reason category (the reason's text before ":")."""
    return entry["reason"].split(":", 1)[0]


def pages_table(entries: list[dict]) -> str:
    """One row per page: its blocks, how many run, fail, and are set aside, by reason."""
    head = ["page", "blocks", "run", "fail", *(f"set aside: {c}" for c in CATEGORIES)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    pages: dict[str, Counter] = {}
    for entry in entries:
        counts = pages.setdefault(entry["page"], Counter())
        counts["blocks"] += 1
        counts[category(entry) if entry["status"] == "set aside" else entry["status"]] += 1
    total: Counter = Counter()
    for page, counts in pages.items():
        total.update(counts)
        rows.append(f"| {page} | {counts['blocks']} | {counts['runs']} | {counts['fails']} | "
                    + " | ".join(str(counts[c]) for c in CATEGORIES) + " |")
    rows.append(f"| **total** | **{total['blocks']}** | **{total['runs']}** | "
                f"**{total['fails']}** | " + " | ".join(f"**{total[c]}**" for c in CATEGORIES)
                + " |")
    return "\n".join(rows) + "\n"


def listing(entries: list[dict]) -> str:
    """The failing blocks with their errors, and the set-aside programs with reasons."""
    rows = []
    failing = [e for e in entries if e["status"] == "fails"]
    rows += ["Failing (why, and the error the block gives):" if failing else "No block fails.",
             ""]
    rows += [f"- `{e['page']}#{e['index']}` (`{e['first_line']}`): {e['cause']}. "
             f"`{e['reason']}`" for e in failing]
    aside = [e for e in entries if e["status"] == "set aside"
             and category(e) != "not a program"]
    rows += ["", "Set aside (programs, or what looks like one; not output or shell text):", "",
             "| block | first line | reason |", "|---|---|---|"]
    rows += [f"| `{e['page']}#{e['index']}` | `{e['first_line'].replace('|', '¦')}` | "
             f"{e['reason'].replace('|', '¦')} |" for e in aside]
    return "\n".join(rows) + "\n"


def run_and_record(only: list[str]) -> None:
    """Run every page's blocks (or the pages `only` names; tests/lmql_docs/harness.py) and
    record the outcomes."""
    import tempfile

    sys.path.insert(0, str(DOCS_TIER))
    from harness import build_docs_model, executed, record_run, run_page

    entries = {f"{e['page']}#{e['index']}": e for e in load()}
    with tempfile.TemporaryDirectory() as folder:
        model = build_docs_model(Path(folder) / "model")
        for page in sorted({e["page"] for e in entries.values() if executed(e)}):
            if only and page not in only:
                continue
            cwd = Path(folder) / page
            cwd.mkdir()
            record_run(entries, run_page(page, entries, cwd, model))
            print(page, file=sys.stderr)
    RECORD.write_text(json.dumps(list(entries.values()), indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs="*", metavar="PAGE",
                        help="run the pages (all, or those named), record them first")
    parser.add_argument("--check", action="store_true", help="exit 1 if out of date")
    args = parser.parse_args()
    if args.run is not None:
        run_and_record(args.run)
    entries = load()
    new = render(STATUS, {"pages": pages_table(entries), "blocks": listing(entries)}, MARKER)
    if new == STATUS.read_text():
        return 0
    if args.check:
        print(f"out of date: {STATUS.relative_to(ROOT)}; run python scripts/lmql_docs_table.py",
              file=sys.stderr)
        return 1
    STATUS.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
