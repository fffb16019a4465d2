"""`await input()` in `%%lmql`: the chat's user types the next message in the notebook.

A program runs on lmql_nb's event-loop thread while the cell's own (the kernel's main)
thread draws its trace. `await input()` hands the request to the cell's thread, which
asks with Python's `input()`: Jupyter shows an input box under the cell's output (the
trace view, drawn up to the question first), the kernel's usual stdin channel. An empty
message, or the notebook's interrupt button, ends the chat. A frontend that takes no
input (nbval, `jupyter nbconvert --execute`) gets a clear error that names `--inputs`.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import queue
from typing import Optional

from ...core import aio

#: what the input box shows before the user's text
PROMPT = "user: "


class InputRequests:
    """`ask` for the program (on the loop thread); `serve` on the cell's thread."""

    def __init__(self) -> None:
        self._pending: "queue.Queue[tuple[str, concurrent.futures.Future[Optional[str]]]]" = (
            queue.Queue())

    async def ask(self, prompt: str) -> Optional[str]:
        """The user's next message (None: the chat ends)."""
        future: concurrent.futures.Future[Optional[str]] = concurrent.futures.Future()
        self._pending.put((prompt, future))
        return await aio.wait(future)

    def serve(self) -> None:
        """Answer the waiting requests, if any, with `input()` (call on the cell's thread,
        after drawing the trace: the input box appears under it)."""
        while True:
            try:
                prompt, future = self._pending.get_nowait()
            except queue.Empty:
                return
            try:
                text = builtins.input(prompt or PROMPT)
            except EOFError:
                future.set_result(None)
                continue
            except Exception as error:  # StdinNotImplementedError: no input box here
                future.set_exception(ValueError(
                    f"await input(): this notebook frontend takes no input "
                    f"({type(error).__name__}); pass the user's messages as a list: "
                    "%%lmql --inputs VAR"))
                continue
            future.set_result(text if text.strip() else None)
