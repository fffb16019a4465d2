"""`await input()` in `%%lmql`: the chat's user types the next message in the notebook.

A program runs on lmql_nb's event-loop thread while the cell's own (the kernel's main)
thread draws its trace. `await input()` hands the request to the cell's thread, which
shows an input box in the trace view (the view's `question`) and, while it waits,
delivers the view's messages with a `CommPump` (a running cell otherwise receives
none): the view sends the user's text, which becomes the program's input. An empty
message or the box's "End chat" ends the chat; the notebook's interrupt button ends the
cell (the trace so far stays).

Where no front end draws the view within `GRACE` seconds (a frontend without widgets,
`jupyter console`, or a kernel where no pump works), the cell asks through the kernel's
stdin channel instead (Python's `input()`; Jupyter shows its own box under the cell),
and its later questions too, without waiting again; a frontend that takes no input
either (nbval, `jupyter nbconvert --execute`) gets a clear error that names `--inputs`.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import dataclasses
import queue
import signal
import threading
import time
from typing import TYPE_CHECKING, Iterator, Optional

from ...core import aio
from ..comm_pump import CommPump

if TYPE_CHECKING:
    from ..views import TraceView

#: what the stdin box shows before the user's text when the program gives no prompt
PROMPT = "user: "
#: seconds a question waits for a front end to say it drew the trace view, before it
#: asks through stdin instead
GRACE = 5.0


@dataclasses.dataclass
class _Question:
    prompt: str
    future: "concurrent.futures.Future[Optional[str]]"
    asked: float  # time.monotonic() when it was shown
    id: Optional[int] = None  # the view's question id; None: asked through stdin


class InputRequests:
    """`ask` for the program (on the loop thread); `serve` and `close` on the cell's
    thread."""

    def __init__(self) -> None:
        self._pending: "queue.Queue[tuple[str, concurrent.futures.Future[Optional[str]]]]" = (
            queue.Queue())
        self._current: Optional[_Question] = None
        self._pump: Optional[CommPump] = None
        self._pump_tried = False
        self._undrawn = False  # a question waited GRACE and no front end drew the view

    async def ask(self, prompt: str) -> Optional[str]:
        """The user's next message (None: the chat ends)."""
        future: concurrent.futures.Future[Optional[str]] = concurrent.futures.Future()
        self._pending.put((prompt, future))
        return await aio.wait(future)

    def serve(self, view: Optional["TraceView"]) -> None:
        """Answer the waiting request, if any, without blocking when it is asked in
        `view` (call on the cell's thread after each redraw of the trace)."""
        if self._current is None:
            try:
                prompt, future = self._pending.get_nowait()
            except queue.Empty:
                return
            self._current = _Question(prompt, future, time.monotonic())
            if view is not None and not self._undrawn and self._ensure_pump() is not None:
                self._current.id = view.ask(prompt)
        question = self._current
        if question.id is not None and view is not None and self._pump is not None:
            self._pump.pump()
            if view.answered(question.id):
                self._answer(view, view.take_answer(question.id))
                return
            if view.rendered or time.monotonic() - question.asked < GRACE:
                return  # the box is shown: the user types
            view.clear_question()  # no front end drew the view: ask through stdin,
            self._undrawn = True    # and the cell's later questions at once
        self._ask_stdin(question.prompt)

    def _ensure_pump(self) -> Optional[CommPump]:
        if not self._pump_tried:
            self._pump_tried = True
            self._pump = CommPump.create()
        return self._pump

    def _answer(self, view: Optional["TraceView"], text: Optional[str]) -> None:
        question, self._current = self._current, None
        assert question is not None
        if view is not None and question.id is not None:
            view.clear_question()
        if not question.future.done():
            question.future.set_result(text if text is not None and text.strip() else None)

    def _ask_stdin(self, prompt: str) -> None:
        """Answer the request through the kernel's stdin channel; an interrupt while it
        waits ends the cell."""
        try:
            with _interruptible():
                text: Optional[str] = builtins.input(prompt or PROMPT)
        except EOFError:
            text = None
        except KeyboardInterrupt:
            raise
        except Exception as error:  # StdinNotImplementedError: no input box here
            question, self._current = self._current, None
            if question is not None and not question.future.done():
                question.future.set_exception(ValueError(
                    f"await input(): this notebook frontend takes no input "
                    f"({type(error).__name__}); pass the user's messages as a list: "
                    "%%lmql --inputs VAR"))
            return
        self._answer(None, text)

    def close(self, view: Optional["TraceView"]) -> None:
        """The cell ends: take the box away and hand the kernel back the messages the
        pump kept (call on the cell's thread, also after an interrupt)."""
        self._current = None
        if view is not None:
            view.clear_question()
        if self._pump is not None:
            self._pump.close()


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """While Python's `input()` waits on the cell's (main) thread, the interrupt button
    raises KeyboardInterrupt there (the magic's own handler only sets a flag, which a
    blocking read never looks at)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
