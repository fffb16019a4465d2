"""A progress display for slow one-time work (converting and loading models)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator


@contextlib.contextmanager
def stage(description: str) -> Iterator[None]:
    """Announce a slow step on stderr, and say how long it took."""
    started = time.monotonic()
    print(f"lmql_nb: {description}...", file=sys.stderr, flush=True)
    yield
    print(f"lmql_nb: {description}: done in {time.monotonic() - started:.1f} s",
          file=sys.stderr, flush=True)
