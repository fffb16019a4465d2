"""LMQL's output writers: `output_writer=` on a query call follows the run as it happens.

    await chat(question, output_writer=lmql_nb.stream("ANSWER"))   # prints ANSWER as it grows

- `stream(variable=None)`: with a variable name (or a list of names), prints that
  variable's text as the model writes it, continuing the same line; without one, shows
  the whole prompt as it grows.
- `printing`: shows the whole prompt after every step.
- `silent` (LMQL's default) and `headless` show nothing.

A writer is called as `writer(sequence_index, event)` with the trace events of
`lmql_nb.query.trace` (the same as `on_event=`), and only follows the first sequence
(`sequence_index` 0), as LMQL's writers follow its first decoding head. Any callable of
that form works as an `output_writer`.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Union

from .trace import (DistributionScored, HoleFinished, HoleStarted, SequenceStarted,
                    TextAppended, TokenAppended)


class OutputWriter:
    """Shows nothing (`silent`, `headless`); the base of the writers below."""

    def __call__(self, sequence_index: int, event: Any) -> None:
        if sequence_index == 0:
            self.event(event)

    def event(self, event: Any) -> None:
        """One trace event of the first sequence."""


class _Prompt(OutputWriter):
    """Keeps the first sequence's prompt text as it grows."""

    def __init__(self) -> None:
        self.prompt = ""
        self._hole_start = 0

    def event(self, event: Any) -> None:
        if isinstance(event, SequenceStarted):
            self.prompt = event.trace.prompt
        elif isinstance(event, TextAppended):
            self.prompt += event.text
        elif isinstance(event, HoleStarted):
            self._hole_start = len(self.prompt)
        elif isinstance(event, TokenAppended):
            self.prompt += event.token.text
        elif isinstance(event, HoleFinished):
            self.prompt = self.prompt[:self._hole_start] + event.segment.text
        elif isinstance(event, DistributionScored):
            self.prompt += event.segment.text
        else:
            return
        self.changed()

    def changed(self) -> None:
        """The prompt changed."""


class PrintingOutputWriter(_Prompt):
    """Shows the whole prompt after every step (`clear`: clears the terminal first)."""

    def __init__(self, clear: bool = False) -> None:
        super().__init__()
        self.clear = clear

    def changed(self) -> None:
        if self.clear:
            sys.stderr.write("\033c")
            sys.stderr.flush()
        print(self.prompt, flush=True)


class StreamingOutputWriter(OutputWriter):
    """Prints the text of `variable` (a name or a list of names) as the model writes it,
    on one line; with no variable, the prompt as it grows."""

    def __init__(self, variable: Union[str, list[str], None] = None) -> None:
        if variable is not None and not isinstance(variable, (str, list)):
            raise TypeError(f"stream() takes a variable name or a list of names, got "
                            f"{type(variable).__name__}")
        self.variables = [variable] if isinstance(variable, str) else variable
        self.current: Optional[str] = None  # the streamed variable being written
        self.printed = ""
        self._prompt = _Prompt()

    def event(self, event: Any) -> None:
        if self.variables is None:
            before = self._prompt.prompt
            self._prompt.event(event)
            after = self._prompt.prompt
            if after != before:
                self._write(after[len(before):] if after.startswith(before) else "\n" + after)
            return
        if isinstance(event, HoleStarted):
            self.current = event.name if event.name in self.variables else None
            if self.current is not None:
                self.printed = ""
        elif isinstance(event, TokenAppended) and event.name == self.current:
            self.printed += event.token.text
            self._write(event.token.text)
        elif isinstance(event, HoleFinished) and event.segment.name == self.current:
            text = event.segment.text
            if text.startswith(self.printed):
                self._write(text[len(self.printed):])
            self.current = None

    @staticmethod
    def _write(text: str) -> None:
        if text:
            print(text, end="", flush=True)


def stream(variable: Union[str, list[str], None] = None) -> StreamingOutputWriter:
    """A writer that prints `variable` (or the whole prompt) as the model writes it."""
    return StreamingOutputWriter(variable)


silent = OutputWriter()
headless = OutputWriter()
printing = PrintingOutputWriter(clear=True)

__all__ = ["OutputWriter", "PrintingOutputWriter", "StreamingOutputWriter", "stream",
           "silent", "headless", "printing"]
