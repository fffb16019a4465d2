"""Recent prompts' model states, found by longest token prefix, bounded in size.

Scoring more values after a prompt the model has seen, or (with `longest`, where the
model's numbers allow it) after a longer prompt that starts with one, then costs only
the new tokens (`closest` finds the longest shared start, for models that can cut a
state back to it). What a state is (tensors, or a
saved llama.cpp sequence state) is the model's business: the cache stores it with its
size.
"""

from __future__ import annotations

import collections
from typing import Callable, Generic, Optional, TypeVar

from ...tokenization.tokenizer import common_prefix_length

State = TypeVar("State")
#: a cache key: token ids
Ids = tuple[int, ...]


class PrefixCache(Generic[State]):
    """Least recently used first out, at most `max_size` in total (in the model's unit)."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._entries: "collections.OrderedDict[Ids, tuple[State, int]]" = \
            collections.OrderedDict()
        self._size = 0

    def longest(self, ids: Ids) -> tuple[int, Optional[State]]:
        """The longest cached prefix of `ids` (`ids` itself included): (its length, its
        state); (0, None) when nothing matches."""
        best = max((key for key in self._entries if len(key) <= len(ids) and ids[:len(key)] == key),
                   key=len, default=None)
        if best is None:
            return 0, None
        self._entries.move_to_end(best)
        return len(best), self._entries[best][0]

    def closest(self, ids: Ids) -> tuple[int, Optional[Ids], Optional[State]]:
        """The entry whose key shares the longest common prefix with `ids` (the key may
        go on past it, or `ids` past the key): (that length, its key, its state);
        (0, None, None) when no key starts as `ids` does."""
        best, length = None, 0
        for key in self._entries:
            common = common_prefix_length(key, ids)
            if common > length:
                best, length = key, common
        if best is None:
            return 0, None, None
        self._entries.move_to_end(best)
        return length, best, self._entries[best][0]

    def get(self, ids: Ids) -> Optional[State]:
        """The state cached for exactly `ids`, or None."""
        if ids not in self._entries:
            return None
        self._entries.move_to_end(ids)
        return self._entries[ids][0]

    def __contains__(self, ids: Ids) -> bool:
        return ids in self._entries

    def put(self, ids: Ids, state: State, size: int) -> bool:
        """Keep `state` for `ids`, dropping the least recently used to make room; False
        (and nothing kept) if it is larger than the whole cache or already there."""
        if size > self.max_size or ids in self._entries:
            return False
        self._entries[ids] = (state, size)
        self._size += size
        while self._size > self.max_size:
            self._drop_oldest()
        return True

    def drop(self, unwanted: Callable[[Ids], bool]) -> None:
        """Drop the entries whose key is `unwanted`."""
        for ids in [ids for ids in self._entries if unwanted(ids)]:
            self._size -= self._entries.pop(ids)[1]

    def _drop_oldest(self) -> None:
        """Drop the least recently used entry (there must be one)."""
        _, (_, dropped_size) = self._entries.popitem(last=False)
        self._size -= dropped_size

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0
