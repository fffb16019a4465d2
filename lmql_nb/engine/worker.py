"""The model worker: one thread that owns a model and batches the requests sent to it.

Every call to an in-process model becomes a `Request` on the worker's queue. The worker
takes what is waiting (after a short window, so that a burst of concurrent calls lands in
one batch), groups compatible requests and hands each group to the backend's runner,
which steps them together (in shared forward passes where the model's numbers allow). Results go back through each request's
`concurrent.futures.Future`; cancelling a request makes the runner drop it at the next
step.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import queue
import threading
import time
from typing import Any, Callable, Hashable, Optional, Sequence

log = logging.getLogger(__name__)

# a burst of requests is gathered for at most this many batch windows
GATHER_WINDOWS = 20


@dataclasses.dataclass(eq=False)
class Request:
    """One unit of work for the worker.

    `batch_key` says which requests may share a batch; `payload` is the runner's to read;
    `on_progress` (optional) is called from the worker thread with partial results.
    """

    batch_key: Hashable
    payload: Any
    on_progress: Optional[Callable[[Any], None]] = None
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    sequence: int = dataclasses.field(default_factory=itertools.count().__next__)

    def cancel(self) -> None:
        self.cancelled.set()

    def finish(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        """Hand the result (or error) to the caller, once."""
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


Runner = Callable[[Sequence[Request]], None]


class ModelWorker:
    """A daemon thread that serves `Request`s through `runner` in batches.

    `runner(requests)` must finish every request it is given (the worker finishes the
    ones it leaves, with an error). `max_batch` caps how many requests share a batch.
    """

    def __init__(self, runner: Runner, name: str, batch_window: float = 0.005,
                 max_batch: int = 32):
        self._runner = runner
        self._queue: "queue.Queue[Request]" = queue.Queue()
        self._batch_window = batch_window
        self._max_batch = max_batch
        self._thread = threading.Thread(target=self._loop, name=f"lmql_nb-worker-{name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> Request:
        self._queue.put(request)
        return request

    def _take_batch(self) -> list[Request]:
        """The next request, and those that follow it with gaps of at most the batch
        window (a burst, such as `score_many`'s rows being tokenised and sent, stays
        together), for at most `GATHER_WINDOWS` windows in all."""
        first = self._queue.get()
        batch = [first]
        started = time.monotonic()
        deadline = started + self._batch_window
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=max(remaining, 0)) if remaining > 0
                             else self._queue.get_nowait())
            except queue.Empty:
                break
            deadline = min(time.monotonic() + self._batch_window,
                           started + GATHER_WINDOWS * self._batch_window)
        return batch

    def _loop(self) -> None:
        while True:
            groups: dict[Hashable, list[Request]] = {}
            for request in sorted(self._take_batch(), key=lambda r: r.sequence):
                if request.cancelled.is_set():
                    request.finish(error=concurrent.futures.CancelledError())
                    continue
                groups.setdefault(request.batch_key, []).append(request)
            for group in groups.values():
                self._run(group)

    def _run(self, group: list[Request]) -> None:
        try:
            self._runner(group)
        except BaseException as error:  # the worker must survive any request
            log.debug("batch failed", exc_info=True)
            for request in group:
                request.finish(error=error)
        for request in group:
            if not request.future.done():
                request.finish(error=RuntimeError("lmql_nb internal error: the runner left "
                                                  "a request unanswered"))
