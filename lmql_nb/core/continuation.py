"""One prompt continued across model calls: a query program's holes, nested queries and
tool loops, where each call's prompt is the previous call's prompt and completion plus
new text.

Inside `continuing()` (the query runtime opens one per program run), an in-process
model may continue the key/value state an earlier call of the same block left (the
longest common token prefix: the prompt so far and the tokens it generated) instead of
reading the whole prompt again. Outside, every call's numbers are those of its prompt
evaluated afresh. On transformers this changes nothing but speed (its float batches are
exact to rounding, and its prefix cache continues prefixes anyway); on llama.cpp the
numbers are then llama.cpp's for the text in the pieces the calls fed it (the prompt,
the generated tokens one at a time, the next text), which differ from a whole-text
evaluation by its batch-split rounding (see `lmql_nb.backends.llamacpp.model`). States
are never shared between blocks, so a program's results do not depend on what ran
before it, and a block's states are of no use once it ends (`is_open`).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from typing import Iterator, Optional

_keys = itertools.count(1)
_active: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar(
    "lmql_nb_continuation", default=None)
_open: set[int] = set()  # blocks not yet ended (read by models' worker threads)


def current() -> Optional[int]:
    """The key of the continuation block this context is in (None: none)."""
    return _active.get()


def is_open(key: int) -> bool:
    """True until the block `key` ends (then a model may drop the states it left)."""
    return key in _open


@contextlib.contextmanager
def continuing() -> Iterator[int]:
    """A new continuation block for the calls made inside (following `await` and the
    tasks started inside); yields its key."""
    key = next(_keys)
    token = _active.set(key)
    _open.add(key)
    try:
        yield key
    finally:
        _open.discard(key)
        _active.reset(token)
