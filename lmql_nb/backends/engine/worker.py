"""The model worker: one thread that owns a model and batches the requests sent to it.

Every call to an in-process model becomes a `Request` on the worker's queue. The worker
takes what is waiting (after a short window, so that a burst of concurrent calls lands in
one batch), groups compatible requests and hands each group to the backend's runner,
which steps them together (in shared forward passes where the model's numbers allow).
Results go back through each request's `concurrent.futures.Future`; cancelling a request
makes the runner drop it at the next step.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import itertools
import logging
import queue
import threading
import time
import weakref
from typing import Any, Callable, Hashable, Optional, Sequence

from ...core import aio

log = logging.getLogger(__name__)

# a burst of requests is gathered for at most this many batch windows
GATHER_WINDOWS = 20
_STOP = object()  # put on a queue, it ends the worker's loop
# seconds the interpreter's exit waits for a worker to finish the step it is in
EXIT_WAIT = 30.0


@dataclasses.dataclass(eq=False)
class Request:
    """One unit of work for the worker.

    `batch_key` says which requests may share a batch; `payload` is the runner's to read;
    `on_progress` (optional) is called from the worker thread with partial results.
    """

    batch_key: Hashable
    payload: Any
    on_progress: Optional[Callable[[Any], None]] = None
    future: concurrent.futures.Future[Any] = dataclasses.field(
        default_factory=concurrent.futures.Future)
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
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._batch_window = batch_window
        self._max_batch = max_batch
        self._running: list[Request] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=f"lmql_nb-worker-{name}",
                                        daemon=True)
        self._thread.start()
        _workers.add(self)

    def submit(self, request: Request) -> Request:
        """Queue `request`; RuntimeError from the worker's own thread (an `on_token`
        callback calling its model would wait for itself forever)."""
        if threading.current_thread() is self._thread:
            raise aio.reentrant_call_error()
        if self._stopped:
            raise RuntimeError("the model has shut down (the interpreter is exiting)")
        self._queue.put(request)
        return request

    def stop(self, timeout: Optional[float] = None) -> None:
        """Cancel what is queued or running and end the thread (at interpreter exit: a
        thread left inside torch or llama.cpp while the interpreter finalises can abort
        the process)."""
        self._stopped = True
        for request in list(self._running):
            request.cancel()
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _take_batch(self) -> list[Any]:
        """The next request, and those that follow it with gaps of at most the batch
        window (a burst, such as `score_many`'s rows being tokenised and sent, stays
        together), for at most `GATHER_WINDOWS` windows in all."""
        first = self._queue.get()
        batch = [first]
        started = time.monotonic()
        deadline = started + self._batch_window
        while len(batch) < self._max_batch and first is not _STOP:
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
        aio.mark_callback_thread()
        while True:
            batch = self._take_batch()
            if _STOP in batch or self._stopped:
                for request in batch:
                    if request is not _STOP:
                        request.finish(error=concurrent.futures.CancelledError())
                return
            groups: dict[Hashable, list[Request]] = {}
            for request in sorted(batch, key=lambda r: r.sequence):
                if request.cancelled.is_set():
                    request.finish(error=concurrent.futures.CancelledError())
                    continue
                groups.setdefault(request.batch_key, []).append(request)
            for group in groups.values():
                self._run(group)

    def _run(self, group: list[Request]) -> None:
        self._running = group
        try:
            self._runner(group)
        except BaseException as error:  # the worker must survive any request
            log.debug("batch failed", exc_info=True)
            for request in group:
                request.finish(error=error)
        finally:
            self._running = []
        for request in group:
            if not request.future.done():
                request.finish(error=RuntimeError("lmql_nb internal error: the runner left "
                                                  "a request unanswered"))


_workers: "weakref.WeakSet[ModelWorker]" = weakref.WeakSet()


@atexit.register
def _stop_workers() -> None:
    """End every worker thread before the interpreter finalises."""
    for worker in list(_workers):
        worker.stop(EXIT_WAIT)
