"""Rows of concurrent calls sent together: one request for several rows' prompts.

/v1/completions takes a list of prompts and answers one choice per prompt, in order.
`RowBatcher.submit(prompts)` returns the choices for `prompts`; concurrent submissions
that wait for one of the transport's request slots (`max_concurrency` per event loop)
are sent together, up to `rows` rows per request, by the first of them to get a slot.
With a slot free a row goes at once (no added latency); under load, rows wait in line
and leave together. Each row gets exactly its own choices: none is lost, repeated or
handed to another row. A failed request fails every row in it; a cancelled row's batch
goes back to the line for the others.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Awaitable, Callable, Optional

from ...errors import BackendError
from .transport import Transport, _loop_key


@dataclasses.dataclass(eq=False)
class _Row:
    prompts: list
    event: Any
    taken: bool = False
    done: bool = False
    choices: Optional[list] = None
    error: Optional[BaseException] = None


class RowBatcher:
    """Sends rows' prompt lists as few requests: see the module's docstring.

    `send(prompts)` makes one request (holding no slot of its own: the batcher holds
    one) and returns its choices in the order of `prompts`.
    """

    def __init__(self, transport: Transport, rows: int,
                 send: Callable[[list], Awaitable[list]]):
        self.transport = transport
        self.rows = max(1, rows)
        self._send = send
        self._lines: "weakref.WeakKeyDictionary[Any, list[_Row]]" = \
            weakref.WeakKeyDictionary()
        self.requests = 0  # requests sent (for tests and benchmarks)

    def _line(self) -> list[_Row]:
        key = _loop_key()
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = []
        return line

    async def submit(self, prompts: list) -> list:
        """The choices for `prompts` (one per prompt, in order)."""
        import anyio

        line = self._line()
        row = _Row(list(prompts), anyio.Event())
        line.append(row)
        while True:
            async with self.transport.slot():
                if not row.taken:
                    await self._lead(row, line)
            await row.event.wait()
            if row.done:
                break
            row.event = anyio.Event()  # put back in line by a cancelled batch: go again
        if row.error is not None:
            raise row.error
        assert row.choices is not None
        return row.choices

    async def _lead(self, row: _Row, line: list[_Row]) -> None:
        """Send `row` and the rows waiting longest with it, and hand out the choices."""
        line.remove(row)
        batch = [row]
        while line and len(batch) < self.rows:
            batch.append(line.pop(0))
        for member in batch:
            member.taken = True
        self.requests += 1
        try:
            choices = await self._send([p for member in batch for p in member.prompts])
            expected = sum(len(member.prompts) for member in batch)
            if len(choices) != expected:
                raise BackendError(f"{self.transport.url} answered {len(choices)} choices "
                                   f"for {expected} prompts")
        except Exception as error:  # the request failed: so does every row in it
            for member in batch:
                member.error, member.done = error, True
                member.event.set()
            return
        except BaseException:  # this row was cancelled: the others go back in line
            others = [member for member in batch if member is not row]
            for member in reversed(others):
                member.taken = False
                line.insert(0, member)
                member.event.set()
            raise
        start = 0
        for member in batch:
            member.choices = list(choices[start:start + len(member.prompts)])
            start += len(member.prompts)
            member.done = True
            member.event.set()
