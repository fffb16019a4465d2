"""Where a running query program's trace goes: collected from the runtime's events (on
lmql_nb's event loop thread), shown from the cell's thread as a growing `TraceView`, or
as text where widgets cannot be shown."""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any, Optional, Sequence

from ...query import trace as tr
from ...core.results import TokenInfo
from ..texts import trace_text


@dataclasses.dataclass
class _Row:
    trace: tr.Trace = dataclasses.field(default_factory=tr.Trace)
    hole: Optional[str] = None  # the hole being filled, if any
    tokens: list[TokenInfo] = dataclasses.field(default_factory=list)
    # nested queries running, outermost first: (hole name, call, the inner trace so far)
    nested: list[tuple[str, str, tr.Trace]] = dataclasses.field(default_factory=list)

    @property
    def current(self) -> tr.Trace:
        """The trace events go to: the innermost running nested query's, else the row's."""
        return self.nested[-1][2] if self.nested else self.trace

    def snapshot(self) -> tr.Trace:
        traces = [self.trace.copy()] + [inner.copy() for _, _, inner in self.nested]
        if self.hole is not None:
            text = "".join(t.text for t in self.tokens)
            traces[-1].segments.append(tr.HoleSegment(self.hole, text, tuple(self.tokens)))
        for level in range(len(self.nested), 0, -1):  # open nested queries, innermost first
            name, call, _ = self.nested[level - 1]
            traces[level - 1].segments.append(
                tr.NestedSegment(name, call, traces[level], "", None, hidden=False))
        return traces[0]


class TraceCollector:
    """An `on_event(sequence_index, event)` callback (see `lmql_nb.query.trace`): keeps
    each row's trace so far. Called from the runtime's thread; `snapshot` reads from any
    other thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[_Row] = []
        self._version = 0

    def __call__(self, index: int, event: tr.Event) -> None:
        with self._lock:
            while len(self._rows) <= index:
                self._rows.append(_Row())
            row = self._rows[index]
            if isinstance(event, tr.SequenceStarted):
                self._rows[index] = _Row(event.trace.copy())
            elif isinstance(event, tr.TextAppended):
                row.current.segments.append(tr.TextSegment(event.text))
            elif isinstance(event, tr.RoleStarted):
                row.current.segments.append(tr.RoleSegment(event.role))
            elif isinstance(event, tr.HoleStarted):
                row.hole, row.tokens = event.name, []
            elif isinstance(event, tr.TokenAppended):
                if row.hole != event.name:
                    row.hole, row.tokens = event.name, []
                row.tokens.append(event.token)
            elif isinstance(event, (tr.HoleFinished, tr.DistributionScored, tr.StepRecorded)):
                row.current.segments.append(event.segment)
                row.hole, row.tokens = None, []
            elif isinstance(event, tr.NestedStarted):
                row.nested.append((event.name, event.query, tr.Trace()))
                row.hole, row.tokens = None, []
            elif isinstance(event, tr.NestedFinished):
                if row.nested:
                    row.nested.pop()
                row.current.segments.append(event.segment)
            elif isinstance(event, tr.SequenceFinished):
                self._rows[index] = _Row(event.trace.copy())
            elif isinstance(event, tr.SequenceDropped):
                row.trace.dropped = True
            self._version += 1

    def completed(self) -> list[tr.Trace]:
        """Every row's trace without the hole being filled, if any."""
        with self._lock:
            return [row.trace.copy() for row in self._rows]

    def snapshot(self) -> tuple[int, list[tr.Trace]]:
        """A change counter and a copy of every row's trace so far (an open hole holds
        the tokens streamed into it)."""
        version, traces, _ = self.state()
        return version, traces

    def state(self) -> tuple[int, list[tr.Trace], list[bool]]:
        """As `snapshot`, and for each row whether its last segment is a hole still being
        filled (shown, but not counted as filled)."""
        with self._lock:
            return (self._version, [row.snapshot() for row in self._rows],
                    [row.hole is not None for row in self._rows])


class TraceWidgetOutput:
    """Shows a `TraceView` that grows while the program runs; at the end its text/plain
    fallback becomes the whole text (what nbval and text front ends see)."""

    def __init__(self, model_identifier: str, decoder: str) -> None:
        from IPython.display import display

        from ..views import TraceView

        self.view = TraceView(status="running", model_identifier=model_identifier,
                              decoder=decoder)
        data, metadata = self.view.mimebundle("(running)")
        self._handle = display(data, metadata=metadata, raw=True, display_id=True)
        self._version = 0

    def update(self, collector: TraceCollector) -> None:
        version, traces, open_rows = collector.state()
        if version != self._version:
            self._version = version
            self.view.set_traces(traces, "running", open_rows)

    def finish(self, traces: Sequence[tr.Trace], status: str = "done",
               open_rows: Sequence[bool] = ()) -> None:
        self.view.set_traces(traces, status, open_rows)
        if self._handle is not None:
            data, metadata = self.view.mimebundle()
            self._handle.update(data, metadata=metadata, raw=True)


class TraceTextOutput:
    """Outside a kernel: prints the final prompt(s) when the program is done."""

    def update(self, collector: TraceCollector) -> None:
        pass

    def finish(self, traces: Sequence[tr.Trace], status: str = "done",
               open_rows: Sequence[bool] = ()) -> None:
        sys.stdout.write(trace_text(traces) + ("\n" if status == "done" else f"\n({status})\n"))
        sys.stdout.flush()


def make_trace_output(model_identifier: str, decoder: str) -> Any:
    """A widget output in a kernel, else text."""
    from ..kernel import in_kernel

    if in_kernel():
        return TraceWidgetOutput(model_identifier, decoder)
    return TraceTextOutput()
