"""`DatasetView`: a `ScoringTable` (from `score_many`) as rows x values, with accuracy
and a confusion table when gold labels are given."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import traitlets

from ...core.scoring import AGGREGATIONS, ScoringTable
from ...tokenization.chat import prompt_text
from . import static
from .base import LmqlWidget
from .registry import shows

COLUMNS = {"prompt": "str", "value": "str", "logprob": "f8", "argmax": "i4", "gold": "i4"}
# rows the live view draws at once (sorting picks which); the static rendering draws fewer
SHOWN_ROWS = 500
STATIC_ROWS = 50
_SORT = re.compile(r"^(?:(?:row|prompt|argmax|gold|v\d+):(?:asc|desc))?$")


def grid(table: ScoringTable, agg: str, alpha: float) -> np.ndarray:
    """(rows, columns) log-probabilities of each value among its row's values (the
    log-softmax of the aggregated scores); NaN where a row has no such value or is
    unfinished."""
    columns = table.columns()
    position = {value: j for j, value in enumerate(columns)}
    out = np.full((len(table), len(columns)), np.nan)
    for i, result in enumerate(table):
        if result is not None:
            for value, logprob in zip(result.continuations, result.logprobs(agg, alpha)):
                out[i, position[value]] = logprob
    return out


def _indices(labels: list, columns: list[str]) -> np.ndarray:
    position = {value: j for j, value in enumerate(columns)}
    return np.array([-1 if label is None else position[label] for label in labels], dtype="<i4")


@shows(ScoringTable)
class DatasetView(LmqlWidget):
    """A `ScoringTable` as a table: one row per prompt, one column per value holding the
    value's probability among the row's values (coloured on the scale every view
    shares, exact numbers on hover), the argmax marked; with gold labels, the gold
    value per row, the accuracy and a confusion table. Click a header to sort (`sort`:
    "row", "prompt", "argmax", "gold" or "v<column index>", then ":asc" or ":desc").
    """

    view = "dataset"
    columns = COLUMNS
    _page_traits = ("model_identifier", "agg", "sort", "shown_rows", "rows")

    model_identifier = traitlets.Unicode("").tag(sync=True)
    agg = traitlets.Unicode("sum", read_only=True).tag(sync=True)
    sort = traitlets.Unicode("").tag(sync=True)
    shown_rows = traitlets.Int(SHOWN_ROWS, read_only=True).tag(sync=True)
    rows = traitlets.Int(0, read_only=True).tag(sync=True)

    def __init__(self, table: ScoringTable, *, agg: str = "sum", alpha: float = 0.7,
                 sort: str = "", **kwargs: Any):
        if not isinstance(table, ScoringTable):
            raise TypeError(f"DatasetView needs a ScoringTable, got {type(table).__name__}")
        if agg not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {agg!r}; accepted: {', '.join(AGGREGATIONS)}")
        super().__init__(sort=sort, **kwargs)
        self.set_trait("agg", agg)
        self.set_trait("rows", len(table))
        self.table, self.alpha = table, float(alpha)
        self.model_identifier = table.model_identifier
        self.logprobs = grid(table, agg, self.alpha)
        columns = table.columns()
        self.predicted = _indices(table.predictions(agg, self.alpha), columns)
        self.gold = _indices(table.gold, columns) if table.gold is not None else None
        self.data = self.pack({
            "prompt": [prompt_text(p) for p in table.prompts], "value": columns,
            "logprob": self.logprobs.reshape(-1).astype("<f8"), "argmax": self.predicted,
            "gold": self.gold if self.gold is not None else np.zeros(0, dtype="<i4"),
        })

    @traitlets.validate("sort")
    def _check_sort(self, proposal: Any) -> str:
        if not _SORT.match(proposal["value"]):
            raise traitlets.TraitError(
                "sort must be '' or '<column>:asc' / '<column>:desc' with column one of "
                f"row, prompt, argmax, gold, v<index>; got {proposal['value']!r}")
        return proposal["value"]

    def text(self) -> str:
        return repr(self.table)

    def accuracy(self) -> float:
        """The share of finished rows whose argmax is the gold value (NaN without gold
        or finished rows)."""
        if self.gold is None:
            return math.nan
        done = self.predicted >= 0
        return float((self.predicted[done] == self.gold[done]).mean()) if done.any() else math.nan

    def static_html(self) -> str:
        """The table's first rows as styled HTML: probabilities coloured, the argmax
        starred, the gold value and the accuracy and confusion table when given."""
        values = self.table.columns()
        cell = "padding: 2px 8px; border-bottom: 1px solid rgba(128,128,128,0.3)"
        number = (f"{cell}; text-align: right; white-space: nowrap; "
                  "font-variant-numeric: tabular-nums")
        heads = ["#", "prompt", *values, "argmax"] + (["gold"] if self.gold is not None else [])
        head = "".join(f'<th style="{cell}; text-align: left; '
                       f'{static.CODE if 1 < k < len(values) + 2 else ""}">'
                       f'{static.text_html(title, markers=1 < k < len(values) + 2)}</th>'
                       for k, title in enumerate(heads))
        body = []
        for i in range(min(len(self.table), STATIC_ROWS)):
            prompt = prompt_text(self.table.prompts[i])  # a conversation as its lines
            shown = prompt if len(prompt) <= 120 else "…" + prompt[-119:]
            cells = [f'<td style="{number}">{i}</td>',
                     f'<td style="{cell}; white-space: pre-wrap; overflow-wrap: anywhere" '
                     f'title="{static.escape(prompt)}">{static.text_html(shown)}</td>']
            for j, value in enumerate(values):
                logprob = float(self.logprobs[i, j])
                best = self.predicted[i] == j
                text = ("★ " if best else "") + static.format_percent(math.exp(logprob))
                cells.append(f'<td style="{number}">' + (
                    "–" if math.isnan(logprob) else static.coloured(
                        static.escape(text), logprob, f"P({value}) = {math.exp(logprob)!r}",
                        "padding: 0 4px; border-radius: 2px; display: inline-block"
                        + ("; font-weight: 600" if best else ""))) + "</td>")
            cells.append(self._label_cell(cell, self.predicted[i]))
            if self.gold is not None:
                right = self.predicted[i] >= 0 and self.predicted[i] == self.gold[i]
                cells.append(self._label_cell(cell, self.gold[i], "✓ " if right else "✗ "))
            body.append(f"<tr>{''.join(cells)}</tr>")
        more = (f'<div style="{static.MUTED}">showing the first {STATIC_ROWS} of '
                f'{len(self.table)} rows</div>' if len(self.table) > STATIC_ROWS else "")
        return (f'<div class="lmnb-static" style="{static.FONT}">{static.legend_html()}'
                f'<div style="{static.MUTED}">{static.escape(self._summary())}</div>'
                f'<table style="border-collapse: collapse; margin-top: 4px"><thead><tr>{head}'
                f'</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'
                f'{self._confusion_html(cell)}</div>')

    def _label_cell(self, style: str, index: int, prefix: str = "") -> str:
        label = "–" if index < 0 else static.text_html(self.table.columns()[index], markers=True)
        return f'<td style="{style}; {static.CODE}; white-space: pre">{prefix}{label}</td>'

    def _summary(self) -> str:
        table = self.table
        parts = [f"model {table.model_identifier}", f"{len(table)} rows x "
                 f"{len(table.columns())} values", f"P(value) by {self.agg}"]
        if not table.complete:
            parts.append(f"{table.finished} finished")
        if self.gold is not None and not math.isnan(self.accuracy()):
            parts.append(f"accuracy {static.format_percent(self.accuracy())}")
        return " · ".join(parts)

    def _confusion_html(self, cell: str) -> str:
        if self.gold is None:
            return ""
        confusion = self.table.confusion(self.agg, self.alpha)
        labels = [static.text_html(v, markers=True) for v in confusion.index]
        head = "".join(f'<th style="{cell}; {static.CODE}">{label}</th>' for label in labels)
        rows = "".join(
            f'<tr><th style="{cell}; {static.CODE}; text-align: left">{label}</th>' + "".join(
                f'<td style="{cell}; text-align: right{"; font-weight: 600" if i == j else ""}">'
                f'{int(confusion.iat[i, j])}</td>' for j in range(len(labels))) + "</tr>"
            for i, label in enumerate(labels))
        return (f'<div style="margin-top: 8px">confusion (rows: gold, columns: argmax)</div>'
                f'<table style="border-collapse: collapse"><thead><tr><th style="{cell}"></th>'
                f'{head}</tr></thead><tbody>{rows}</tbody></table>')

    def __repr__(self) -> str:
        return f"DatasetView({self._summary()})"
