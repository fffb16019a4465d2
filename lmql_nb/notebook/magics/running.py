"""Running a coroutine from a magic while the cell's thread keeps drawing.

Magics are not awaited (the kernel's event loop is busy running the cell), so the
coroutine runs on lmql_nb's private event loop (the one `_sync` uses), while this thread calls
`tick()` every `interval` seconds to push new tokens to the widget. Widget messages so
all leave from the kernel's main thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import threading
import traceback
from typing import Any, Callable, Coroutine, Iterator, TypeVar

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
    with _interrupt_flag() as interrupted:
        try:
            while True:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                try:
                    return submitted.future.result(timeout=interval)
                except concurrent.futures.TimeoutError:
                    tick()
        except KeyboardInterrupt:
            submitted.cancel(grace=10)  # let the cancellation reach the model's thread
            raise


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[threading.Event]:
    """While the magic runs, SIGINT (the notebook's interrupt button) sets an event that
    the loop above turns into a KeyboardInterrupt. Raised by the default handler instead,
    the KeyboardInterrupt can land in code that swallows it (a weakref callback run by
    the garbage collector while a busy trace view is redrawn: "Exception ignored in
    ...") and the cell would run on. Off the main thread, signals cannot be handled:
    nothing changes there."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda number, frame: interrupted.set())
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
