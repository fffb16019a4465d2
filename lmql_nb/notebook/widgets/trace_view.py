"""`TraceView`: a query program's whole prompt, its holes labelled and their tokens coloured."""

from __future__ import annotations

from typing import Any, Iterable, Sequence, Union

import numpy as np
import traitlets

from ...query.result import LMQLResult
from ...query.trace import DistributionSegment, HoleSegment, TextSegment, Trace
from . import static
from .base import LmqlWidget
from .token_view import TOKEN_COLUMNS, token_columns, token_html

STATUSES = ("running", "done", "interrupted", "failed")
_KINDS = {TextSegment: 0, HoleSegment: 1, DistributionSegment: 2}
COLUMNS = {
    "row_segments": "i4", "row_score": "f8", "row_dropped": "u1",
    "seg_kind": "u1", "seg_name": "str", "seg_text": "str", "seg_tokens": "i4",
    "seg_values": "i4", **TOKEN_COLUMNS, "dist_value": "str", "dist_prob": "f8",
}


def _columns(traces: Sequence[Trace]) -> dict[str, Any]:
    segments = [s for trace in traces for s in trace.segments]
    holes = [s for s in segments if isinstance(s, HoleSegment)]
    distributions = [s for s in segments if isinstance(s, DistributionSegment)]
    return {
        "row_segments": np.array([len(t.segments) for t in traces], dtype="<i4"),
        "row_score": np.array([t.logprob for t in traces], dtype="<f8"),
        "row_dropped": np.array([t.dropped for t in traces], dtype="u1"),
        "seg_kind": np.array([_KINDS[type(s)] for s in segments], dtype="u1"),
        "seg_name": [getattr(s, "name", "") for s in segments],
        "seg_text": [s.text for s in segments],
        "seg_tokens": np.array([len(s.tokens) if isinstance(s, HoleSegment) else 0
                                for s in segments], dtype="<i4"),
        "seg_values": np.array([len(s.values) if isinstance(s, DistributionSegment) else 0
                                for s in segments], dtype="<i4"),
        **token_columns([t for hole in holes for t in hole.tokens]),
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
        """Each row's prompt text with its holes' tokens coloured (numbers in `title`s) and
        each distribution's values with their probabilities."""
        rows = []
        for index, trace in enumerate(self._traces, 1):
            parts = []
            for segment in trace.segments:
                if isinstance(segment, HoleSegment) and segment.tokens:
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
            label = (f'<div style="{static.MUTED}">#{index} · logprob '
                     f'{static.format_number(trace.logprob, 3)}</div>'
                     if len(self._traces) > 1 else "")
            rows.append(f'{label}<div style="{static.CODE}; white-space: pre-wrap; '
                        f'line-height: 1.7; margin-bottom: 6px">{"".join(parts)}</div>')
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

