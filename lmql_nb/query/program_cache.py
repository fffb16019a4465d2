"""The compile cache of `run` / `run_sync`: compiled programs by source text, bounded.

It holds compiled code only, never a caller's values: a program reads its variables
from the place it is called each time it runs (see `functions.run`). The oldest entry
goes when the cache is full.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")

#: how many compiled programs `run` / `run_sync` keep
CAPACITY = 256


class ProgramCache(Generic[T]):
    """A thread-safe least-recently-used map from source text to a compiled program."""

    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self._entries: collections.OrderedDict[str, T] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, source: str, compile: Callable[[str], T]) -> T:
        """The compiled `source`, compiling it (outside the lock) on a miss."""
        with self._lock:
            if source in self._entries:
                self._entries.move_to_end(source)
                return self._entries[source]
        compiled = compile(source)
        with self._lock:
            self._entries[source] = compiled
            self._entries.move_to_end(source)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return compiled

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every compiled program."""
        with self._lock:
            self._entries.clear()
