"""The rows of a token view: the generations it shows and the branches grown from them.

A branch departs from a row at a token position with another token (`LLM.branch`) and
is drawn beneath that row; it can be branched again, so the rows form a small tree.
Rows live here in the order they were made (the front end lays the tree out); a row
that is removed takes its descendants with it.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Optional, Sequence

import numpy as np

from ...core.results import Generation, TokenInfo

BRANCH_COLUMNS = {"row_parent": "i4", "row_position": "i4", "row_shared_logprob": "f8",
                  "row_status": "str"}


@dataclasses.dataclass(frozen=True)
class Branch:
    """A branch a view shows: row `row` departs from row `parent` at token `position`.

    `generation` is what `LLM.branch` returned (None while it runs or if it failed);
    `status` is "generating", "done" or "failed: <reason>"; `tokens` are the tokens
    shown so far.
    """

    row: int
    parent: int
    position: int
    token_id: int
    status: str
    tokens: tuple[TokenInfo, ...]
    generation: Optional[Generation] = None


@dataclasses.dataclass(eq=False)
class _Row:
    key: int
    tokens: list[TokenInfo]
    generation: Optional[Generation] = None
    parent: Optional["_Row"] = None
    position: int = -1
    token_id: int = -1
    status: str = "done"


class Rows:
    """The rows of a token view: generations first, then branches."""

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._keys = itertools.count()

    def set_sequences(self, sequences: Sequence[Sequence[TokenInfo]],
                      generations: Sequence[Optional[Generation]] = ()) -> None:
        """Replace everything with these sequences (their branches go too)."""
        generations = list(generations) or [None] * len(sequences)
        self._rows = [_Row(next(self._keys), list(s), g) for s, g in zip(sequences, generations)]

    @property
    def originals(self) -> list[list[TokenInfo]]:
        return [list(r.tokens) for r in self._rows if r.parent is None]

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, index: int) -> _Row:
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(self._rows):
            raise ValueError(f"row must be an int in [0, {len(self._rows)}), got {index!r}")
        return self._rows[index]

    def add_branch(self, parent: int, position: int, token_id: int) -> _Row:
        """A new, empty branch row of row `parent` at `position` (checked)."""
        source = self.row(parent)
        if source.generation is None:
            raise ValueError(f"row {parent} has no finished generation to branch from")
        if isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position < len(source.tokens):
            raise ValueError(f"position must be in [0, {len(source.tokens)}) for row {parent}, "
                             f"got {position!r}")
        row = _Row(next(self._keys), [], None, source, position, token_id, "generating")
        self._rows.append(row)
        return row

    def remove(self, index: int) -> None:
        """Remove branch row `index` and every branch grown from it."""
        row = self.row(index)
        if row.parent is None:
            raise ValueError(f"row {index} is a generation, not a branch; only branches "
                             "can be removed")
        doomed = {row.key}
        for other in self._rows:  # rows come after their parents
            if other.parent is not None and other.parent.key in doomed:
                doomed.add(other.key)
        self._rows = [r for r in self._rows if r.key not in doomed]

    def index(self, row: _Row) -> Optional[int]:
        """Where `row` is now (None once removed)."""
        return next((i for i, r in enumerate(self._rows) if r is row), None)

    def snapshot(self, row: _Row) -> Branch:
        """Branch row `row` as it is now (row numbers -1 once removed)."""
        index = self.index(row)
        parent = self.index(row.parent) if row.parent is not None else None
        return Branch(-1 if index is None else index, -1 if parent is None else parent,
                      row.position, row.token_id, row.status, tuple(row.tokens),
                      row.generation)

    def branches(self) -> list[Branch]:
        """Every branch row, as `Branch` snapshots."""
        return [self.snapshot(row) for row in self._rows if row.parent is not None]

    def keys(self) -> set[int]:
        return {row.key for row in self._rows}

    def shared_logprob(self, row: _Row) -> float:
        """The log-probability of the tokens a row shares with its ancestors."""
        if row.parent is None:
            return 0.0
        parent = row.parent
        return self.shared_logprob(parent) + float(sum(t.logprob for t in
                                                       parent.tokens[:row.position]))

    def sequences(self) -> list[list[TokenInfo]]:
        return [list(r.tokens) for r in self._rows]

    def columns(self) -> dict[str, Any]:
        """The `BRANCH_COLUMNS` of the rows."""
        return {
            "row_parent": np.array([-1 if r.parent is None else self.index(r.parent)
                                    for r in self._rows], dtype="<i4"),
            "row_position": np.array([r.position for r in self._rows], dtype="<i4"),
            "row_shared_logprob": np.array([self.shared_logprob(r) for r in self._rows],
                                           dtype="<f8"),
            "row_status": [r.status for r in self._rows],
        }

    def depth(self, row: _Row) -> int:
        return 0 if row.parent is None else 1 + self.depth(row.parent)

    def tree_order(self) -> list[int]:
        """Row indices as the tree is drawn: each row followed by its branches."""
        children: dict[Optional[int], list[int]] = {}
        for i, row in enumerate(self._rows):
            key = None if row.parent is None else row.parent.key
            children.setdefault(key, []).append(i)
        order: list[int] = []

        def visit(i: int) -> None:
            order.append(i)
            for child in children.get(self._rows[i].key, []):
                visit(child)

        for i in children.get(None, []):
            visit(i)
        return order
