"""Running a coroutine from a magic while the cell's thread keeps drawing.

Magics are not awaited (the kernel's event loop is busy running the cell), so the
coroutine runs on lmql_nb's private event loop (the one `_sync` uses), while this thread calls
`tick()` every `interval` seconds to push new tokens to the widget. Widget messages so
all leave from the kernel's main thread.
"""

from __future__ import annotations

import concurrent.futures
import traceback
from typing import Any, Callable, Coroutine, TypeVar

from ...core import aio

T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """An interrupt after which a magic kept what it had made. A KeyboardInterrupt (so
    "Run All" stops there), which IPython shows as its one-line message, without a
    traceback through lmql_nb."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class CellSyntaxError(Exception):
    """A syntax error in a magic's cell, shown as IPython shows its own: the cell's line
    with a caret and the message, no frames of lmql_nb's code (IPython would list them
    for a real SyntaxError raised while a cell runs). Its name is "SyntaxError", as the
    notebook reports it; `error` is the original `SyntaxError`."""

    def __init__(self, error: SyntaxError) -> None:
        super().__init__(str(error))
        self.error = error

    def _render_traceback_(self) -> list[str]:
        lines = traceback.format_exception_only(SyntaxError, self.error)
        return [line.rstrip("\n") for chunk in lines for line in chunk.split("\n") if line]


CellSyntaxError.__name__ = CellSyntaxError.__qualname__ = "SyntaxError"


def run_with_ticks(coroutine: Coroutine[Any, Any, T], tick: Callable[[], None],
                   interval: float = 0.05) -> T:
    """Run `coroutine` to completion, calling `tick()` here every `interval` seconds.

    A KeyboardInterrupt (the notebook's interrupt button) cancels the coroutine, which
    stops the model's work behind it, and is re-raised.
    """
    submitted = aio.Submitted(coroutine)
    try:
        while True:
            try:
                return submitted.future.result(timeout=interval)
            except concurrent.futures.TimeoutError:
                tick()
    except KeyboardInterrupt:
        submitted.cancel(grace=10)  # let the cancellation reach the model's thread
        raise
