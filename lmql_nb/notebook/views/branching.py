"""Branching in a token view: `LLM.branch` from a row at a token, streamed into a new row
beneath it (the rows themselves are `.rows.Rows`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any, Callable, Optional

from ...core import aio
from ...core.results import Generation, TokenInfo
from .rows import Branch, Rows

STREAM_INTERVAL = 0.1  # seconds between two updates of a streaming branch


class BranchController:
    """Grows branches into `rows` (guarded by `lock`) with an attached model.

    `push()` sends the rows to the front end (called while a branch streams and when it
    ends); `refresh()` updates the view's displays once a branch is finished or removed,
    so that what a saved notebook keeps shows it.
    """

    def __init__(self, rows: Rows, lock: threading.RLock, push: Callable[[], None],
                 refresh: Callable[[], None]) -> None:
        self._rows = rows
        self._lock = lock
        self._push = push
        self._refresh = refresh
        #: the branches still generating, by row key
        self.running: dict[int, concurrent.futures.Future] = {}
        self.model: Any = None
        self.options: dict[str, Any] = {}

    def attach(self, model: Any, options: Optional[dict] = None) -> None:
        """Branch with `model` (an `lmql_nb.LLM`; None: no branching) and `options`."""
        from ...generations.llm import LLM

        if model is not None and not isinstance(model, LLM):
            raise TypeError(f"model must be an lmql_nb.LLM, got {type(model).__name__}")
        self.model = model
        self.options = {k: v for k, v in (options or {}).items()
                        if k not in ("n", "return_details", "max_tokens")}

    def branch(self, row: int, position: int, token: Any, max_tokens: Optional[int] = None,
               **options: Any) -> "concurrent.futures.Future[Branch]":
        """Branch row `row` at token `position` with `token` (an `Alternative`, a token id
        or a one-token text); see `TokenView.branch`."""
        from ...core.results import Alternative

        if self.model is None:
            raise ValueError("this view has no model to branch with: show it with "
                             "lmql_nb.show(generation, model=llm)")
        token_id = token.token_id if isinstance(token, Alternative) else \
            token if isinstance(token, int) and not isinstance(token, bool) else -1
        with self._lock:
            source = self._rows.row(row)
            new = self._rows.add_branch(row, position, token_id)
            generation = source.generation
        limit = max_tokens if max_tokens is not None else max(len(source.tokens) - position, 16)
        options = {**self.options, **options}
        self._push()
        last = [0.0]

        def on_token(index: int, info: TokenInfo) -> None:
            with self._lock:
                new.tokens.append(info)
            now = time.monotonic()
            if now - last[0] > STREAM_INTERVAL:
                last[0] = now
                self._push()

        model = self.model

        async def run() -> Branch:
            try:
                assert generation is not None  # a row the view shows has its generation
                result = await model.branch(generation, position, token, limit,
                                            on_token=on_token, **options)
                assert isinstance(result, Generation)  # n=1
                with self._lock:
                    new.generation = result
                    new.tokens = list(result.tokens)
                    new.token_id = result.tokens[0].token_id if result.tokens else token_id
                    new.status = "done"
            except BaseException as error:
                with self._lock:
                    new.status = "cancelled" if isinstance(error, (asyncio.CancelledError,
                        concurrent.futures.CancelledError)) else f"failed: {error}"
                raise
            finally:
                self.running.pop(new.key, None)
                self._push()
                self._refresh()
            with self._lock:
                return self._rows.snapshot(new)

        future = aio.submit(run())
        self.running[new.key] = future
        return future

    def remove(self, row: int) -> None:
        """Remove branch row `row` and the branches grown from it (stopping any that are
        still generating)."""
        with self._lock:
            self._rows.remove(row)
            kept = self._rows.keys()
        for key in [key for key in self.running if key not in kept]:
            future = self.running.pop(key, None)
            if future is not None:
                future.cancel()
        self._push()
        self._refresh()

    def on_message(self, content: Any) -> str:
        """A click in the front end: {"type": "branch", row, position, token_id} or
        {"type": "remove", row}. Returns why it could not be done ("" when it was); never
        raises for a bad request."""
        try:
            if not isinstance(content, dict):
                return ""
            # checked by branch(): a bad value is a TypeError or ValueError
            row: Any = content.get("row")
            position: Any = content.get("position")
            if content.get("type") == "branch":
                self.branch(row, position, content.get("token_id"))
            elif content.get("type") == "remove":
                self.remove(row)
        except (TypeError, ValueError) as error:
            return f"cannot branch: {error}"
        return ""
