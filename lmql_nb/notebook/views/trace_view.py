"""`TraceView`: a query program's whole prompt, its holes labelled and their tokens coloured."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import traitlets

from ...query.result import LMQLResult
from ...query.trace import (DistributionSegment, HoleSegment, NestedSegment, RoleSegment,
                            StepSegment, TextSegment, Trace)
from ..texts import trace_text
from . import static
from .base import LmqlWidget
from .registry import shows
from .tokens import TOKEN_COLUMNS, token_columns, token_html

STATUSES = ("running", "done", "interrupted", "failed")
# a nested query is drawn from its NESTED_BEGIN (the call) to its NESTED_END (what the outer
# prompt gained), its inner segments in between
# a chat tag ({:user}) is a ROLE: its name is the role, the turn's label
TEXT, HOLE, DISTRIBUTION, STEP, NESTED_BEGIN, NESTED_END, ROLE = range(7)
_KINDS = {TextSegment: TEXT, HoleSegment: HOLE, DistributionSegment: DISTRIBUTION,
          StepSegment: STEP, RoleSegment: ROLE}
#: the tag of a hole marked `@message` (LMQL's lmql.lib.chat), live and static
MESSAGE_TITLE = ("@message: what the chat's user sees (the holes without it are the "
                 "program's internal reasoning)")
COLUMNS = {
    "row_segments": "i4", "row_score": "f8", "row_dropped": "u1", "row_open": "u1",
    "seg_kind": "u1", "seg_name": "str", "seg_text": "str", "seg_detail": "str",
    "seg_message": "u1",
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
        else:  # a hole's detail: the bound that ended it, if one did (HoleSegment.limit)
            items.append(_Flat(_KINDS[type(s)], getattr(s, "name", ""), s.text,
                               _limit_note(s), s))
    return items


def _limit_note(segment: Any) -> str:
    """"ended at max_len=2048" for a hole a bound ended, else ""."""
    limit = getattr(segment, "limit", "") if isinstance(segment, HoleSegment) else ""
    return f"ended at {limit}" if limit else ""


def _drawn_tokens(item: _Flat) -> tuple:
    segment = item.segment
    if isinstance(segment, HoleSegment) and "".join(t.text for t in segment.tokens) == segment.text:
        return segment.tokens
    return ()


def filled_holes(trace: Trace, still_open: bool = False) -> int:
    """How many holes `trace` has filled (holes, distribution variables, nested queries'
    values, at its top level: what `%%lmql` sets as variables): the one count the view's
    header, its static rendering, `repr` and an interrupt's message give. A hole still
    being filled (the last segment, when `still_open`) is not counted."""
    filled = sum(1 for s in trace.segments
                 if isinstance(s, (HoleSegment, DistributionSegment, NestedSegment)))
    return filled - bool(still_open)


def holes_label(counts: Sequence[int]) -> str:
    """"2 holes filled" (one row), "2 holes filled in each" or "1–2 holes filled per row"."""
    if not counts:
        return "0 holes filled"
    low, high = min(counts), max(counts)
    noun = f"hole{'' if high == 1 else 's'} filled"
    if len(counts) == 1:
        return f"{high} {noun}"
    return f"{high} {noun} in each" if low == high else f"{low}–{high} {noun} per row"


def _columns(traces: Sequence[Trace], open_rows: Sequence[bool]) -> dict[str, Any]:
    rows = [_flatten(t.segments) for t in traces]
    items = [item for row in rows for item in row]
    distributions = [i.segment for i in items if isinstance(i.segment, DistributionSegment)]
    return {
        "row_segments": np.array([len(row) for row in rows], dtype="<i4"),
        "row_score": np.array([t.logprob for t in traces], dtype="<f8"),
        "row_dropped": np.array([t.dropped for t in traces], dtype="u1"),
        "row_open": np.array(list(open_rows), dtype="u1"),
        "seg_kind": np.array([i.kind for i in items], dtype="u1"),
        "seg_name": [i.name for i in items],
        "seg_text": [i.text for i in items],
        "seg_detail": [i.detail for i in items],
        # a hole marked `[@message X]`: the text a chat program's user sees
        "seg_message": np.array([bool(getattr(i.segment, "message", False)) for i in items],
                                dtype="u1"),
        "seg_tokens": np.array([len(_drawn_tokens(i)) for i in items], dtype="<i4"),
        "seg_values": np.array([len(i.segment.values) if isinstance(i.segment,
                                                                    DistributionSegment) else 0
                                for i in items], dtype="<i4"),
        **token_columns([t for i in items for t in _drawn_tokens(i)]),
        "dist_value": [v for d in distributions for v in d.values],
        "dist_prob": np.array([p for d in distributions for p in d.probs], dtype="<f8"),
    }


Results = Union[LMQLResult, Trace, Iterable[Union[LMQLResult, Trace]]]


def _items(results: Results) -> list[Any]:
    return [results] if isinstance(results, (LMQLResult, Trace)) else list(results)


def traces_of(results: Results) -> list[Trace]:
    """The traces behind `results`: an `LMQLResult`, a `Trace`, or a sequence of them."""
    traces = []
    for item in _items(results):
        if isinstance(item, LMQLResult):
            traces.append(item.trace)
        elif isinstance(item, Trace):
            traces.append(item)
        else:
            raise TypeError(f"a trace view shows LMQLResults or Traces; got "
                            f"{type(item).__name__}")
    return traces


_CHIP = ("border: 1px solid var(--jp-brand-color1, #1976d2); border-radius: 3px; "
         "padding: 0 2px; margin: 0 1px")
_DASHED = "; border-style: dashed"
_CHIP_NAME = ("font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 0.72em; "
              "text-transform: uppercase; letter-spacing: 0.04em; opacity: 0.7; "
              "margin-right: 3px; user-select: none")
_STEP = ("border: 1px solid rgba(128,128,128,0.6); border-radius: 3px; padding: 0 3px; "
         "font-size: 0.85em; opacity: 0.85")


def _chip(name: str, inner: str, extra: str = "") -> str:
    """A hole as the live view's chip: its name visible, then its value."""
    name = static.escape(name)
    return (f'<span data-hole="{name}" style="{_CHIP}{extra}"><span style="{_CHIP_NAME}" '
            f'title="hole {name}">{name}</span>{inner}</span>')


def _value_html(text: str) -> str:
    """A value without tokens: its text (marked when it is only whitespace)."""
    return static.text_html(text, markers=static.blank(text), line_breaks=True)


def _distribution_bars(segment: DistributionSegment) -> str:
    """A distribution's values with their probabilities as bars (the most likely bold)."""
    best = max(range(len(segment.probs)), key=lambda k: segment.probs[k], default=-1)
    rows = []
    for k, (value, p) in enumerate(zip(segment.values, segment.probs)):
        weight = "font-weight: 600; " if k == best else ""
        rows.append(
            f'<tr style="{weight}"><td style="{static.CODE}; padding-right: 8px">'
            f'{static.text_html(value, markers=True)}</td><td><span style="display: '
            f'inline-block; width: 120px; height: 0.7em; background: rgba(128,128,128,0.2); '
            f'vertical-align: middle"><span style="display: block; height: 100%; width: '
            f'{100 * p:.2f}%; background: var(--jp-brand-color1, #1976d2)"></span></span> '
            f'<span style="font-variant-numeric: tabular-nums">{static.format_percent(p)}'
            f'</span></td></tr>')
    return (f'<div data-distribution="{static.escape(segment.name)}"><div style="{static.MUTED}">'
            f'P({static.escape(segment.name)})</div><table style="border-collapse: collapse">'
            f'{"".join(rows)}</table></div>')


def _segments_html(segments: Sequence[Any], bars: list[str]) -> str:
    """Segments as the live view draws them (hole chips with their names, coloured
    tokens, nested queries as collapsible boxes, steps as chips); each distribution's
    bars are added to `bars`."""
    parts = []
    for segment in segments:
        if isinstance(segment, NestedSegment):
            state = "hidden: taken out after it returned" if segment.hidden else "kept"
            summary = static.escape(f"{segment.name} ← {segment.query} ({state})")
            parts.append(f'<details style="display: inline-block; vertical-align: top; '
                         f'{_STEP}"><summary>{summary}</summary>'
                         f'{_segments_html(segment.trace.segments, bars)}</details>')
            parts.append(_chip(segment.name, _value_html(segment.text)))
        elif isinstance(segment, RoleSegment):  # a turn starts: its role, as a label
            parts.append(f'<br><span class="lmnb-trace-role" style="{_STEP}; '
                         f'font-weight: 600">{static.escape(segment.role)}</span> ')
        elif isinstance(segment, StepSegment):
            chip = static.escape(f"{segment.step}: {segment.label}")
            parts.append(f'<span title="{static.escape(segment.detail)}" style="{_STEP}">'
                         f'{chip}</span>{static.text_html(segment.text)}')
        elif isinstance(segment, HoleSegment):
            drawn = "".join(t.text for t in segment.tokens) == segment.text and segment.tokens
            inner = ("".join(token_html(t) for t in segment.tokens) if drawn
                     else _value_html(segment.text))
            if segment.message:
                inner = (f'<span class="lmnb-hole-tag" title="{MESSAGE_TITLE}" '
                         f'style="{static.MUTED}; font-size: 0.8em">message </span>{inner}')
            note = _limit_note(segment)
            if note:
                inner += (f'<span style="{static.MUTED}; font-size: 0.8em"> '
                          f'[{static.escape(note)}]</span>')
            parts.append(_chip(segment.name, inner))
        elif isinstance(segment, DistributionSegment):
            parts.append(_chip(segment.name, _value_html(segment.text), _DASHED))
            bars.append(_distribution_bars(segment))
        else:
            parts.append(static.text_html(segment.text))
    return "".join(parts)


@shows(LMQLResult, many=True)
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
    #: while a chat program's `await input()` waits: {"id": n, "prompt": "..."} (the
    #: view shows an input box), else {}
    question = traitlets.Dict().tag(sync=True)

    def __init__(self, results: Results = (), **kwargs: Any):
        super().__init__(**kwargs)
        self._traces: list[Trace] = []
        self._open: list[bool] = []
        self._asked = 0
        self._answers: dict[int, Optional[str]] = {}
        #: True once a front end has drawn this view (it says so when it does)
        self.rendered = False
        self.on_msg(self._on_message)
        if not self.model_identifier:  # the model that ran the results, as they say
            self.model_identifier = next((r.model for r in _items(results)
                                          if isinstance(r, LMQLResult) and r.model), "")
        traces = traces_of(results)
        if traces:
            self.set_traces(traces, self.status)

    def set_traces(self, traces: Sequence[Trace], status: str = "running",
                   open_rows: Sequence[bool] = ()) -> None:
        """Show `traces` (one row each) in one message to the front end; `open_rows[i]`:
        row i's last segment is a hole still being filled (drawn, not counted)."""
        self._traces = [t.copy() for t in traces]
        self._open = [bool(o) for o in open_rows] + [False] * (len(traces) - len(open_rows))
        with self.hold_sync():
            self.data = self.pack(_columns(self._traces, self._open))
            self.status = status

    def ask(self, prompt: str) -> int:
        """Show an input box for the chat user's next message, with `prompt` (the
        program's `input("...")` text) above it; returns the question's id."""
        self._asked += 1
        self.question = {"id": self._asked, "prompt": prompt}
        return self._asked

    def answered(self, question: int) -> bool:
        """Whether the user has answered question `question` (sent a message or ended
        the chat)."""
        return question in self._answers

    def take_answer(self, question: int) -> Optional[str]:
        """The user's message for `question` (None: the user ended the chat)."""
        return self._answers.pop(question)

    def clear_question(self) -> None:
        """Take the input box away."""
        self.question = {}

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """The front end's messages: {"event": "ready"} when it has drawn the view,
        {"event": "answer", "id": n, "text": "..."} and {"event": "end", "id": n} from
        the input box. Answers to a question not asked now are dropped."""
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "ready":
            self.rendered = True
        elif event in ("answer", "end"):
            asked = self.question.get("id")
            text = content.get("text") if event == "answer" else None
            if asked is not None and content.get("id") == asked and (
                    text is None or isinstance(text, str)):
                self._answers[asked] = text

    def filled(self) -> list[int]:
        """Each row's count of filled holes (see `filled_holes`)."""
        return [filled_holes(t, o) for t, o in zip(self._traces, self._open)]

    def text(self) -> str:
        """Each row's whole text (prompt and holes), under "[i]" headers for several."""
        return trace_text(self._traces)

    def static_html(self) -> str:
        """As the live view draws it, without script: each row's prompt text, each hole a
        chip with its name and its tokens coloured (numbers in `title`s), each
        distribution's values as bars, nested queries as collapsible `<details>`, decorator
        and tool steps as labelled chips; the header's count and status."""
        rows = []
        for index, trace in enumerate(self._traces, 1):
            bars: list[str] = []
            text = _segments_html(trace.segments, bars)
            label = (f'<div style="{static.MUTED}">#{index} · logprob '
                     f'{static.format_number(trace.logprob, 3)}</div>'
                     if len(self._traces) > 1 else "")
            rows.append(f'{label}<div style="{static.CODE}; white-space: pre-wrap; '
                        f'overflow-wrap: break-word; line-height: 1.9; margin-bottom: 6px">'
                        f'{text}</div>'
                        + (f'<div style="display: flex; flex-wrap: wrap; gap: 8px 24px">'
                           f'{"".join(bars)}</div>' if bars else ""))
        return (f'<div class="lmnb-static" style="{static.FONT}">{static.legend_html()}'
                f'{"".join(rows)}<div style="{static.MUTED}">'
                f'{static.escape(self._status_text())}</div></div>')

    def _status_text(self) -> str:
        parts = [self.model_identifier] if self.model_identifier else []
        if len(self._traces) > 1:
            kind = ("beams" if self.decoder.startswith("beam") else "samples"
                    if self.decoder.startswith("sample") else "results")
            parts.append(f"{len(self._traces)} {kind}")
        parts.append(holes_label(self.filled()))
        if self.status != "done":
            parts.append("running…" if self.status == "running" else self.status)
        return " · ".join(parts)

    @property
    def traces(self) -> list[Trace]:
        """The traces shown, one per row."""
        return [t.copy() for t in self._traces]

    def __repr__(self) -> str:
        rows = len(self._traces)
        model = f"{self.model_identifier}, " if self.model_identifier else ""
        return (f"TraceView({model}{rows} row{'' if rows == 1 else 's'}, "
                f"{holes_label(self.filled())}, {self.status})")

