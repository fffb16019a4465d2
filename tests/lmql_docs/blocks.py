"""The code blocks of LMQL's documentation pages (`pages/`, unchanged), and each runnable
block as the notebook cell a reader would paste it into.

A block is every fenced block of a page, in page order (`index` counts from 0 per page).
Its `kind` is the fence's language: `lmql` (LMQL's pages write both ```lmql and
```{lmql}), `python`, or what else the page says (`promptdown`, `grammar`, `bash`,
`output`, `truncated`, or "" for an unlabelled fence): only `lmql` and `python` blocks are
programs. An `lmql` block is a query program, what `%%lmql` runs; a `python` block is a
Python cell.

LMQL's documentation site adds markup lines to its ```{lmql} blocks that are no part of
the program: `name::<id>` (the playground example's name), `numbers::` (draw line
numbers) at the top, and `model-output::` followed by the output shown below the program.
`cell_source` leaves these out, as the rendered page does.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

HERE = Path(__file__).parent
PAGES = HERE / "pages"
FENCE = re.compile(r"^```(.*)$")
MARKUP = re.compile(r"^[a-z][a-z-]*::\S*$")  # name::x, numbers::, model-output::
OUTPUT_MARKUP = "model-output::"
PROGRAM_KINDS = {"lmql", "python"}


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str     # the page's file name
    index: int    # its place among the page's blocks, from 0
    kind: str     # "lmql", "python", or the fence's other language ("" if none)
    source: str   # the block's text, as the page has it
    line: int     # the page's line of the opening fence, from 1

    @property
    def key(self) -> str:
        """`page#index`, as blocks.json names the block."""
        return f"{self.page}#{self.index}"

    @property
    def first_line(self) -> str:
        """The block's first non-blank line (what blocks.json shows of it)."""
        return next((line.strip() for line in self.source.splitlines() if line.strip()), "")

    def cell_source(self) -> str:
        """The cell a reader would paste: an `lmql` block as a `%%lmql` cell, without the
        documentation site's markup lines; a `python` block as it is."""
        if self.kind != "lmql":
            return self.source
        lines: list[str] = []
        for line in self.source.splitlines():
            if line.strip() == OUTPUT_MARKUP:
                break  # what follows is the output the page shows
            if MARKUP.match(line.strip()) and not lines:
                continue
            if not lines and not line.strip():
                continue
            lines.append(line)
        return "%%lmql\n" + "\n".join(lines).rstrip() + "\n"


def page_blocks(path: Path) -> list[Block]:
    """The fenced blocks of page `path`, in order."""
    blocks: list[Block] = []
    kind = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line.strip())
        if kind is None:
            if match:
                kind = match.group(1).strip().strip("{}")
                start, body = number, []
        elif match and not match.group(1).strip():
            blocks.append(Block(path.name, len(blocks), kind, "\n".join(body) + "\n", start))
            kind = None
        else:
            body.append(line)
    if kind is not None:
        raise ValueError(f"{path.name}:{start}: a block is never closed")
    return blocks


def pages() -> list[Path]:
    """The documentation pages, by name."""
    return sorted(PAGES.glob("*.md"))


def all_blocks() -> list[Block]:
    """Every block of every page."""
    return [block for path in pages() for block in page_blocks(path)]
