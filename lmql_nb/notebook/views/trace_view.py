"""`TraceView`: a query program's whole prompt, its holes labelled and their tokens coloured."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence, Union

import numpy as np
import traitlets

from ...query.result import LMQLResult
from ...query.trace import (DistributionSegment, HoleSegment, NestedSegment, StepSegment,
                            TextSegment, Trace)
from . import static
from .base import LmqlWidget
from .token_view import TOKEN_COLUMNS, token_columns, token_html

STATUSES = ("running", "done", "interrupted", "failed")
# a nested query is drawn from its NESTED_BEGIN (the call) to its NESTED_END (what the outer
# prompt gained), its inner segments in between
TEXT, HOLE, DISTRIBUTION, STEP, NESTED_BEGIN, NESTED_END = range(6)
_KINDS = {TextSegment: TEXT, HoleSegment: HOLE, DistributionSegment: DISTRIBUTION,
          StepSegment: STEP}
COLUMNS = {
    "row_segments": "i4", "row_score": "f8", "row_dropped": "u1",
    "seg_kind": "u1", "seg_name": "str", "seg_text": "str", "seg_detail": "str",
    "seg_tokens": "i4", "seg_values": "i4", **TOKEN_COLUMNS, "dist_value": "str",
    "dist_prob": "f8",
}


@dataclasses.dataclass(frozen=True)
class _Flat:
    """One drawn item: a segment, or one end of a nested query."""

    kind: int
    name: str
    text: str
    detail: str = ""
    segment: Any = None


def _flatten(segments: Sequence[Any]) -> list[_Flat]:
    """Segments in drawing order, nested queries as begin, inner items, end. A hole's
    tokens are drawn when they are its text (a decorator may have replaced it)."""
    items: list[_Flat] = []
    for s in segments:
        if isinstance(s, NestedSegment):
            items.append(_Flat(NESTED_BEGIN, s.name, s.query, "hidden" if s.hidden else ""))
            items.extend(_flatten(s.trace.segments))
            items.append(_Flat(NESTED_END, s.name, s.text, repr(s.value)))
        elif isinstance(s, StepSegment):
            items.append(_Flat(STEP, s.name, s.text, f"{s.step}\n{s.label}\n{s.detail}"))
        else:
            items.append(_Flat(_KINDS[type(s)], getattr(s, "name", ""), s.text, "", s))
    return items


def _drawn_tokens(item: _Flat) -> tuple:
    segment = item.segment
    if isinstance(segment, HoleSegment) and "".join(t.text for t in segment.tokens) == segment.text:
        return segment.tokens
    return ()


def _columns(traces: Sequence[Trace]) -> dict[str, Any]:
    rows = [_flatten(t.segments) for t in traces]
    items = [item for row in rows for item in row]
    distributions = [i.segment for i in items if isinstance(i.segment, DistributionSegment)]
    return {
        "row_segments": np.array([len(row) for row in rows], dtype="<i4"),
        "row_score": np.array([t.logprob for t in traces], dtype="<f8"),
        "row_dropped": np.array([t.dropped for t in traces], dtype="u1"),
        "seg_kind": np.array([i.kind for i in items], dtype="u1"),
        "seg_name": [i.name for i in items],
        "seg_text": [i.text for i in items],
        "seg_detail": [i.detail for i in items],
        "seg_tokens": np.array([len(_drawn_tokens(i)) for i in items], dtype="<i4"),
        "seg_values": np.array([len(i.segment.values) if isinstance(i.segment,
                                                                    DistributionSegment) else 0
                                for i in items], dtype="<i4"),
        **token_columns([t for i in items for t in _drawn_tokens(i)]),
        "dist_value": [v for d in distributions for v in d.values],
        "dist_prob": np.array([p for d in distributions for p in d.probs], dtype="<f8"),
    }


Results = Union[LMQLResult, Trace, Iterable[Union[LMQLResult, Trace]]]


def traces_of(results: Results) -> list[Trace]:
    """The traces behind `results`: an `LMQLResult`, a `Trace`, or a sequence of them."""
    items = [results] if isinstance(results, (LMQLResult, Trace)) else list(results)
    traces = []
    for item in items:
        if isinstance(item, LMQLResult):
            traces.append(item.trace)
        elif isinstance(item, Trace):
            traces.append(item)
        else:
            raise TypeError(f"a trace view shows LMQLResults or Traces; got "
                            f"{type(item).__name__}")
    return traces


_CHIP = ("border: 1px solid rgba(128,128,128,0.6); border-radius: 3px; padding: 0 3px; "
         "font-size: 0.85em; opacity: 0.85")


def _segments_html(segments: Sequence[Any]) -> str:
    parts = []
    for segment in segments:
        if isinstance(segment, NestedSegment):
            state = "hidden: taken out after it returned" if segment.hidden else "kept"
            summary = static.escape(f"{segment.name} ← {segment.query} ({state})")
            parts.append(f'<details style="display: inline-block; vertical-align: top; '
                         f'{_CHIP}"><summary>{summary}</summary>'
                         f'{_segments_html(segment.trace.segments)}</details>')
            parts.append(f'<span title="{static.escape(segment.name)}" style="outline: 1px '
                         f'dashed rgba(128,128,128,0.6)">{static.text_html(segment.text)}</span>')
            continue
        if isinstance(segment, StepSegment):
            chip = static.escape(f"{segment.step}: {segment.label}")
            parts.append(f'<span title="{static.escape(segment.detail)}" style="{_CHIP}">'
                         f'{chip}</span>{static.text_html(segment.text)}')
            continue
        if isinstance(segment, HoleSegment) and segment.tokens and \
                "".join(t.text for t in segment.tokens) == segment.text:
            inner = "".join(token_html(t) for t in segment.tokens)
        elif isinstance(segment, DistributionSegment):
            inner = static.escape(segment.text) + static.escape(" (" + ", ".join(
                f"{v!r} {static.format_percent(p)}"
                for v, p in zip(segment.values, segment.probs)) + ")")
        else:
            inner = static.text_html(segment.text)
        name = getattr(segment, "name", "")
        parts.append(f'<span title="{static.escape(name)}" style="outline: 1px dashed '
                     f'rgba(128,128,128,0.6)">{inner}</span>' if name else inner)
    return "".join(parts)


class TraceView(LmqlWidget):
    """A query program's prompt as it wrote it, one row per sample or beam.

    Each hole is highlighted and labelled with its name; its tokens are coloured by
    probability and show their alternatives on hover (as in the `TokenView`); each
    `distribution` shows its values' probabilities as bars. Build one with
    `lmql_nb.show(result)`; `%%lmql` fills one while the program runs.
    """

    view = "trace_view"
    columns = COLUMNS
    _page_traits = ("status", "model_identifier", "decoder")

    status = traitlets.Enum(STATUSES, default_value="done").tag(sync=True)
    model_identifier = traitlets.Unicode("").tag(sync=True)
    decoder = traitlets.Unicode("").tag(sync=True)

    def __init__(self, results: Results = (), **kwargs: Any):
        super().__init__(**kwargs)
        self._traces: list[Trace] = []
        traces = traces_of(results)
        if traces:
            self.set_traces(traces, self.status)

    def set_traces(self, traces: Sequence[Trace], status: str = "running") -> None:
        """Show `traces` (one row each) in one message to the front end."""
        self._traces = [t.copy() for t in traces]
        with self.hold_sync():
            self.data = self.pack(_columns(self._traces))
            self.status = status

    def text(self) -> str:
        """Each row's whole text (prompt and holes), under "[i]" headers for several."""
        from ..trace_streaming import trace_text

        return trace_text(self._traces)

    def static_html(self) -> str:
        """Each row's prompt text with its holes' tokens coloured (numbers in `title`s),
        each distribution's values with their probabilities, nested queries as
        collapsible `<details>` (what the inner query added) and decorator and tool steps
        as labelled chips."""
        rows = []
        for index, trace in enumerate(self._traces, 1):
            label = (f'<div style="{static.MUTED}">#{index} · logprob '
                     f'{static.format_number(trace.logprob, 3)}</div>'
                     if len(self._traces) > 1 else "")
            rows.append(f'{label}<div style="{static.CODE}; white-space: pre-wrap; '
                        f'line-height: 1.7; margin-bottom: 6px">'
                        f'{_segments_html(trace.segments)}</div>')
        return (f'<div class="lmnb-static" style="{static.FONT}">{static.legend_html()}'
                f'{"".join(rows)}</div>')

    @property
    def traces(self) -> list[Trace]:
        """The traces shown, one per row."""
        return [t.copy() for t in self._traces]

    def __repr__(self) -> str:
        rows = len(self._traces)
        holes = sum(1 for t in self._traces for s in t.segments if not isinstance(s, TextSegment))
        return (f"TraceView({rows} row{'' if rows == 1 else 's'}, "
                f"{holes} hole{'' if holes == 1 else 's'}, {self.status})")

