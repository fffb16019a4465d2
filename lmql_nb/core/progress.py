"""A progress display for slow one-time work (converting and loading models).

`stage(description)` announces a step on stderr, says every few seconds that it is
still running (with the seconds so far: a step that shows no bar of its own, such as
reading a GGUF tokenizer, is never a silent stretch), and says how long it took. Stages
nest: only the innermost one running speaks.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator

#: seconds between two "still running" lines of a stage
HEARTBEAT = 5.0

_lock = threading.Lock()
_running: list[str] = []  # the stages running now, outermost first


def _say(line: str) -> None:
    print(f"lmql_nb: {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(description: str, heartbeat: float = HEARTBEAT) -> Iterator[None]:
    """Announce a slow step on stderr, tell every `heartbeat` seconds that it is still
    running, and say how long it took."""
    started = time.monotonic()
    _say(f"{description}...")
    with _lock:
        _running.append(description)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(heartbeat):
            with _lock:
                innermost = _running[-1] == description if _running else False
            if innermost:
                _say(f"{description}... {time.monotonic() - started:.0f} s")

    ticker = threading.Thread(target=beat, name="lmql_nb-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        with _lock:
            _running.remove(description)
    _say(f"{description}: done in {time.monotonic() - started:.1f} s")
