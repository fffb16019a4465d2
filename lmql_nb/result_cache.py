"""Remembered results of deterministic calls (argmax and beam generation, scores)."""

from __future__ import annotations

import collections
import threading
from typing import Any, Hashable, Optional

_MISSING = object()


class ResultCache:
    """A bounded, thread-safe, least-recently-used map from call keys to results."""

    def __init__(self, max_entries: int = 4096):
        self._entries: "collections.OrderedDict[Hashable, Any]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.enabled = True

    def get(self, key: Hashable) -> Optional[Any]:
        with self._lock:
            value = self._entries.get(key, _MISSING)
            if value is _MISSING:
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: the process-wide cache every LLM uses
results = ResultCache()
