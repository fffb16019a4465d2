"""`%%lmql`: a cell run as a query program in the notebook's namespace, its trace shown
while it runs.

The program reads the notebook's variables (`{x}`, and any name it uses); afterwards
each hole and `distribution` variable is a notebook variable, as a normal cell's
assignments are (from the first output when the decoder gives several).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, MutableMapping, Optional, Sequence

from ...query.compiler import Origin, compile_program
from ...query.functions import QueryFunction
from ...query.options import Settings
from ...query.trace import DistributionSegment, HoleSegment, NestedSegment, Trace
from .running import Interrupted, run_with_ticks
from .trace_streaming import TraceCollector, make_trace_output

if TYPE_CHECKING:
    from .chat_input import InputRequests

CELL_FILENAME = "<%%lmql cell>"


def compile_cell(line: str, cell: str, namespace: dict[str, Any]) -> QueryFunction:
    """The cell as a query function over `namespace`. Errors in the program are
    `SyntaxError`s whose line numbers count the `%%lmql` line as line 1, as the notebook
    shows the cell; a name the program reads that the notebook does not define is a
    `NameError`, before anything runs."""
    source = cell.removesuffix("\n")
    lines = (f"%%lmql {line}".rstrip(), *source.split("\n"))
    program = compile_program(source, Origin(CELL_FILENAME, line=2, lines=lines))
    missing = [name for name in program.parameters
               if name not in namespace and not hasattr(builtins, name)]
    if missing:
        raise NameError(f"name {missing[0]!r} is not defined: the query reads it; define it "
                        "in the notebook first (or write [[ ]] / {{ }} for literal brackets "
                        "and braces)")
    return QueryFunction(program, namespace, {}, None, True, {}, "%%lmql",
                         keywords_are_options=True)  # the magic's flags are options


def run_cell(function: QueryFunction, options: dict[str, Any], settings: Settings,
             namespace: MutableMapping[str, Any], out: Optional[str], interval: float,
             requests: Optional["InputRequests"] = None) -> None:
    """Run `function` with query `options` (which `settings` resolved), showing its trace
    as it grows; then set the holes as notebook variables and store what the program
    returns in `out` (a list when the decoder gives n > 1, as a query call returns).

    `requests` answers the program's `await input()`: on this thread, after each
    redraw, in the trace view's input box.
    An interrupt (or an error) keeps the trace so far on screen and the holes filled so
    far as variables, then propagates.
    """
    collector = TraceCollector()
    decoder = settings.decoder if settings.n == 1 else f"{settings.decoder}(n={settings.n})"
    output = make_trace_output(settings.model.model_identifier, decoder)
    view = getattr(output, "view", None)  # None: text, no input box
    try:
        def tick() -> None:
            output.update(collector)
            if requests is not None:  # after drawing: the box goes under the trace
                requests.serve(view)

        try:
            outcomes = run_with_ticks(function.outcomes(on_event=collector, **options), tick,
                                      interval)
        finally:
            if requests is not None:
                requests.close(view)
    except BaseException as error:
        _, traces, open_rows = collector.state()
        interrupted = isinstance(error, KeyboardInterrupt)
        output.finish(traces, "interrupted" if interrupted else "failed", open_rows)
        done = collector.completed()  # without a hole still being filled
        kept = assign_holes(namespace, done[0], function.program.hole_names) if done else 0
        if interrupted:
            raise Interrupted(f"interrupted: kept {kept} hole{'' if kept == 1 else 's'} "
                              "(the trace so far is shown)") from None
        raise
    traces = [o.result.trace for o in outcomes]
    output.finish(traces)
    assign_holes(namespace, traces[0], function.program.hole_names)
    if out:
        values = [o.output for o in outcomes]
        namespace[out] = values[0] if settings.n == 1 else values


def assign_holes(namespace: MutableMapping[str, Any], trace: Trace,
                 names: Sequence[str]) -> int:
    """Set each hole and distribution variable of `trace` in `namespace` (the last value
    of a hole filled several times, as a loop's assignments leave it); return how many
    holes were filled."""
    wanted, filled = set(names), 0
    for segment in trace.segments:
        if isinstance(segment, (HoleSegment, NestedSegment)) and segment.name in wanted:
            namespace[segment.name] = segment.value
            filled += 1
        elif isinstance(segment, DistributionSegment) and segment.name in wanted:
            namespace[segment.name] = segment.chosen
            filled += 1
    return filled
