"""Rewrite the README's option tables from the options classes that declare them.

    python scripts/readme_options.py          # rewrite README.md in place
    python scripts/readme_options.py --check  # exit 1 if README.md is out of date

A table sits between `<!-- options-table: module.Class -->` and `<!-- /options-table -->`
and is `Class.markdown()` (see `lmql_nb.core.validation.Options`).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE = re.compile(r"(<!-- options-table: ([\w.]+) -->\n)(.*?)(<!-- /options-table -->)", re.S)


def render(text: str) -> str:
    """`text` with every marked table regenerated."""
    def table(match: re.Match) -> str:
        module, _, name = match.group(2).rpartition(".")
        options = getattr(importlib.import_module(module), name)
        return f"{match.group(1)}{options.markdown()}\n{match.group(4)}"

    return TABLE.sub(table, text)


def main(argv: list[str]) -> int:
    text = README.read_text()
    updated = render(text)
    if "--check" in argv:
        if updated != text:
            print("README.md's option tables are out of date: run "
                  "python scripts/readme_options.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
