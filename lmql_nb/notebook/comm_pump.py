"""Widget messages delivered while a cell runs.

While a cell runs, the kernel's main thread runs it, so the kernel reads no shell
message: what a widget sends from the browser (a comm message) waits until the cell
ends. A cell that waits for a widget (the chat box of `%%lmql`) would wait forever.
`CommPump.pump()`, called on the cell's thread, reads the shell messages waiting for the
main thread and handles the comm messages there and then, as the kernel would; the
others (the next cells' execute requests, completions, ...) are kept and handed back to
the kernel when the pump closes, ahead of anything that arrived after them, so they run
after the cell, in their order. Control messages (interrupt, shutdown) need no pump:
the kernel's control thread takes them.

This is jupyter-ui-poll's idea for ipykernel 7, whose main thread receives shell
messages from its shell channel thread through an inproc socket (jupyter-ui-poll calls
`kernel.do_one_iteration()`, which ipykernel 7 no longer has). `CommPump.create()`
gives None elsewhere (no kernel, ipykernel 6, a subshell): the caller falls back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

log = logging.getLogger(__name__)

COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


class CommPump:
    """Delivers the comm messages waiting for the kernel's main thread (see the module)."""

    def __init__(self, kernel: Any, socket: Any, redispatch: Any) -> None:
        self._kernel = kernel
        self._socket = socket
        self._redispatch = redispatch  # the kernel's own receive callback
        self._kept: list[list[Any]] = []
        self._closed = False

    @classmethod
    def create(cls) -> Optional["CommPump"]:
        """A pump for the kernel this cell runs in, or None where it cannot work (outside
        a kernel, an ipykernel without a shell channel thread, off the main thread)."""
        from .kernel import in_kernel

        if not in_kernel() or threading.current_thread() is not threading.main_thread():
            return None
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        channel = getattr(kernel, "shell_channel_thread", None)
        manager = getattr(channel, "manager", None)
        try:
            pair = manager.get_shell_channel_to_subshell_pair(None)  # type: ignore[union-attr]
            stream = pair.to_stream
            redispatch = stream._recv_callback
        except AttributeError:  # ipykernel < 7: no inproc socket to read
            return None
        if redispatch is None or getattr(kernel, "session", None) is None:
            return None
        return cls(kernel, pair.to_socket, redispatch)

    def pump(self) -> int:
        """Handle the comm messages waiting now (without waiting for more); keep the
        others for `close`. Returns how many comm messages were handled."""
        import zmq

        if self._closed:
            raise RuntimeError("CommPump.pump() after close()")
        handled = 0
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return handled
            if self._handle(frames):
                handled += 1
            else:
                self._kept.append(frames)

    def _handle(self, frames: list[Any]) -> bool:
        """Handle `frames` if they are a comm message (True), else leave them (False)."""
        session = self._kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            # a peek: the kernel checks the signature again when it handles a kept message
            header = session.deserialize(list(rest), content=False, copy=False)["header"]
        except Exception:  # not ours to judge: the kernel logs it when it gets it back
            return False
        msg_type = header.get("msg_type")
        if msg_type not in COMM_TYPES:
            return False
        try:
            message = session.deserialize(list(rest), content=True, copy=False)
        except Exception:
            log.error("lmql_nb: an invalid comm message was dropped", exc_info=True)
            return True
        handler = self._kernel.shell_handlers.get(msg_type)
        try:
            handler(self._kernel.shell_stream, idents, message)
        except Exception:  # as the kernel does: a widget's error does not end the cell
            log.error("lmql_nb: error in a comm handler", exc_info=True)
        return True

    def close(self) -> None:
        """Hand the kept messages back to the kernel, in their order (they run once the
        cell has ended). Call on the cell's thread before it ends."""
        if self._closed:
            return
        self._closed = True
        loop = self._kernel.io_loop
        for frames in self._kept:
            loop.add_callback(self._redispatch, frames)
        self._kept = []

    def __enter__(self) -> "CommPump":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
