"""Rewrite the generated parts of the README and docs/ from what declares them.

    python scripts/readme_options.py          # rewrite README.md and docs/*.md in place
    python scripts/readme_options.py --check  # exit 1 if any of them is out of date

An option table sits between `<!-- options-table: module.Class -->` and
`<!-- /options-table -->` and is `Class.markdown()` (see `lmql_nb.core.validation.Options`).
A command's help sits between `<!-- cli-help: COMMAND -->` and `<!-- /cli-help -->` and
is what `python -m lmql_nb COMMAND --help` prints (at 88 columns).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TABLE = re.compile(r"(<!-- options-table: ([\w.]+) -->\n)(.*?)(<!-- /options-table -->)", re.S)
HELP = re.compile(r"(<!-- cli-help: (\w+) -->\n)(.*?)(<!-- /cli-help -->)", re.S)


def pages() -> list[Path]:
    """The README and every page under docs/."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _command_help(command: str) -> str:
    from lmql_nb.cli import _parser

    os.environ["COLUMNS"] = "88"  # argparse wraps at the terminal's width
    subparsers = next(a for a in _parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command].format_help().rstrip("\n")


def render(text: str) -> str:
    """`text` with every marked table and command help regenerated."""
    def table(match: re.Match) -> str:
        module, _, name = match.group(2).rpartition(".")
        options = getattr(importlib.import_module(module), name)
        return f"{match.group(1)}{options.markdown()}\n{match.group(4)}"

    def command(match: re.Match) -> str:
        return f"{match.group(1)}```\n{_command_help(match.group(2))}\n```\n{match.group(4)}"

    return HELP.sub(command, TABLE.sub(table, text))


def main(argv: list[str]) -> int:
    stale = []
    for path in pages():
        text = path.read_text()
        updated = render(text)
        if updated != text:
            stale.append(path.relative_to(ROOT))
            if "--check" not in argv:
                path.write_text(updated)
    if stale and "--check" in argv:
        print(f"{', '.join(map(str, stale))}: generated parts out of date: run "
              "python scripts/readme_options.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
