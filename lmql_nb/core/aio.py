"""Bridges between the engine's worker threads and the caller's world.

The engine does its work on threads and hands results back through
`concurrent.futures.Future`s. `wait` awaits such a future from whatever async library
the caller runs (asyncio, trio, curio), without blocking its loop; `run_sync` is the one
place the `_sync` API goes through: it runs a coroutine to completion from plain code, a
thread, or a cell whose event loop is already running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from typing import Any, Awaitable, Callable, Coroutine, Optional, TypeVar

import sniffio

T = TypeVar("T")


async def wait(future: concurrent.futures.Future,
               on_cancel: Optional[Callable[[], None]] = None) -> Any:
    """Await a thread-side future from the current async library.

    If the awaiting task is cancelled, `on_cancel` runs (so the work behind the future
    stops) and the cancellation propagates.
    """
    try:
        library = sniffio.current_async_library()
        if library == "asyncio":
            inner = asyncio.wrap_future(future)
            try:
                return await asyncio.shield(inner)
            except asyncio.CancelledError:
                # the work ends later; its outcome (often a CancelledError of its own) has
                # no reader now: take it, or asyncio logs "exception was never retrieved"
                inner.add_done_callback(_retrieve)
                raise
        if library == "trio":
            return await _wait_trio(future)
        if library == "curio":
            import curio

            return await curio.run_in_thread(future.result)
        raise RuntimeError(f"lmql_nb does not support the async library {library!r}; "
                           "use asyncio, trio or curio")
    except BaseException:
        if not future.done() and on_cancel is not None:
            on_cancel()
        raise


def _retrieve(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()


async def _wait_trio(future: concurrent.futures.Future) -> Any:
    import trio

    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: concurrent.futures.Future) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass

    future.add_done_callback(wake)
    await done.wait()
    return future.result()


def run_in_thread(function: Callable[..., T], *args: Any,
                  name: str = "lmql_nb") -> concurrent.futures.Future:
    """Run `function(*args)` on a new daemon thread; return a future of its result."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as error:  # handed to the waiting caller
            future.set_exception(error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


class _Portal:
    """A private event loop on a daemon thread that runs `_sync` calls.

    Using our own loop (rather than patching the caller's with nest-asyncio) means
    `_sync` works the same in a script, in a Jupyter cell whose loop is running, from
    many threads at once, and across any number of `asyncio.run` calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever,
                                                name="lmql_nb-sync", daemon=True)
                self._thread.start()
            return self._loop

    def in_portal_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def abandon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Leave `loop` to whatever holds its thread: the next call starts a new one."""
        with self._lock:
            if self._loop is loop:
                self._loop, self._thread = None, None


_portal = _Portal()
_thread_state = threading.local()


def mark_callback_thread() -> None:
    """Mark the current thread as one that runs `on_token` callbacks (a model worker):
    lmql_nb calls made from it fail at once instead of waiting for the thread itself."""
    _thread_state.runs_callbacks = True


def reentrant_call_error() -> RuntimeError:
    """The error for an lmql_nb call made from an `on_token` callback."""
    return RuntimeError("lmql_nb was called from inside an on_token callback, which runs "
                        "on the model's own thread: the call would wait for itself forever. "
                        "Collect what you need in the callback and make the call after "
                        "the generation returns (or from another thread)")


def submit(coroutine: Coroutine[Any, Any, T],
           loop: Optional[asyncio.AbstractEventLoop] = None) -> "concurrent.futures.Future[T]":
    """Schedule `coroutine` on lmql_nb's private event loop (or `loop`, one it gave);
    return a future of it."""
    if getattr(_thread_state, "runs_callbacks", False):
        if asyncio.iscoroutine(coroutine):
            coroutine.close()  # never awaited: no "was never awaited" warning
        raise reentrant_call_error()
    if _portal.in_portal_thread():
        raise RuntimeError("a _sync function was called from inside an lmql_nb coroutine; "
                           "await the async version instead")
    return _start_in_context(coroutine, loop or _portal.loop(),
                             contextvars.copy_context())


def _start_in_context(coroutine: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop,
                      context: contextvars.Context) -> "concurrent.futures.Future[T]":
    """`asyncio.run_coroutine_threadsafe`, with the task running in the caller's
    `contextvars` context (as an awaited coroutine would): context variables set by the
    caller (an active inference-certificate tracer) are seen inside."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def start() -> None:
        if future.cancelled():
            coroutine.close()
            return
        task = loop.create_task(coroutine)  # copies the current context: `context`

        def done(finished: asyncio.Task) -> None:
            if finished.cancelled():
                future.cancel()
            elif not future.set_running_or_notify_cancel():
                return  # cancelled meanwhile
            elif finished.exception() is not None:
                future.set_exception(finished.exception())
            else:
                future.set_result(finished.result())

        task.add_done_callback(done)

        def cancelled(_: concurrent.futures.Future) -> None:
            if future.cancelled():
                loop.call_soon_threadsafe(task.cancel)

        future.add_done_callback(cancelled)

    loop.call_soon_threadsafe(start, context=context)
    return future


#: how long an interrupted call may take to stop before its event loop is left behind
CANCEL_GRACE_SECONDS = 3.0


class Submitted:
    """A coroutine running on lmql_nb's private loop (`start`), and a way to stop it that
    leaves the loop usable for the next call whatever the coroutine does (`cancel`)."""

    def __init__(self, coroutine: Coroutine[Any, Any, T]):
        self.finished = threading.Event()

        async def main() -> Any:
            try:
                return await coroutine
            finally:
                self.finished.set()

        self.loop = _portal.loop()
        self.future: concurrent.futures.Future = submit(main(), self.loop)

    def cancel(self, grace: float = CANCEL_GRACE_SECONDS) -> bool:
        """Cancel the coroutine and wait up to `grace` seconds for it to stop; return
        whether it did. One that does not (Python that never gives control back) is left
        running on its loop, and later calls get a new loop: lmql_nb stays usable."""
        self.future.cancel()
        stopped = False
        try:
            stopped = self.finished.wait(timeout=grace)
        finally:
            if not stopped:
                _portal.abandon(self.loop)
        return stopped


def run_sync(coroutine_function: Callable[..., Coroutine[Any, Any, T]], *args: Any,
             **kwargs: Any) -> T:
    """Run `coroutine_function(*args, **kwargs)` to completion and return its result.

    A KeyboardInterrupt (a notebook's interrupt button) cancels the coroutine, which
    stops the work behind it, and is then re-raised; the next call works whatever the
    interrupted coroutine was doing (see `Submitted.cancel`).
    """
    submitted = Submitted(coroutine_function(*args, **kwargs))
    try:
        return submitted.future.result()
    except KeyboardInterrupt:
        submitted.cancel()
        raise


async def gather(*awaitables: Awaitable[Any]) -> list:
    """Await all, concurrently, on asyncio or trio; results in order. The first failure
    is raised itself (not inside an exception group)."""
    import anyio

    results: list = [None] * len(awaitables)

    async def run(index: int, awaitable: Awaitable[Any]) -> None:
        results[index] = await awaitable

    try:
        async with anyio.create_task_group() as group:
            for index, awaitable in enumerate(awaitables):
                group.start_soon(run, index, awaitable)
    except Exception as error:
        raise first_failure(error) from None
    return results


def first_failure(error: BaseException) -> BaseException:
    """The first error inside an exception group (a task group's failure), else `error`."""
    inner = getattr(error, "exceptions", None)
    return inner[0] if inner else error
