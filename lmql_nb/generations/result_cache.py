"""Remembered results of deterministic calls (argmax and beam generation, seeded
sampling, scores): in memory, and on disk in SQLite so that a new process gets them too.

Keys are hashes of everything that changes a result: the model's identity (which
includes a fingerprint of its weight files), the kind of call, the prompt, the values
and every option. Values are stored as JSON, never pickled, so a foreign file cannot run
code. A corrupt or foreign database is moved aside with a warning and rebuilt; a locked
one never is. SQLite's own locking (WAL mode) lets several processes read and write at
once without losses.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Optional

from ..errors import ForeignDatabase
from ..core.paths import cache_dir

log = logging.getLogger(__name__)

SCHEMA = "lmql_nb-results-1"
OPEN_TIMEOUT = 30.0  # seconds to wait for other processes creating or migrating the file


def _is_unusable(error: sqlite3.Error) -> bool:
    """True for a damaged or foreign file; False for passing states such as a lock."""
    return (isinstance(error, ForeignDatabase)
            or getattr(error, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _is_busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def make_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable `parts`."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class MemoryCache:
    """A bounded, thread-safe, least-recently-used map."""

    def __init__(self, max_entries: int = 4096):
        self._entries: "collections.OrderedDict[Hashable, Any]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: Hashable) -> Optional[Any]:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

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


class DiskCache:
    """A SQLite table of JSON results, created on first use in the user cache folder."""

    def __init__(self, path_factory: Callable[[], Path]):
        self._path_factory = path_factory
        self._local = threading.local()

    @property
    def path(self) -> Path:
        return self._path_factory()

    def _connection(self) -> sqlite3.Connection:
        path = self.path
        cached = getattr(self._local, "connection", None)
        if cached is not None and self._local.path == path:
            return cached
        try:
            connection = self._open(path)
        except sqlite3.DatabaseError as error:
            if not _is_unusable(error):
                raise
            self._move_aside(path, error)
            connection = self._open(path)
        self._local.connection, self._local.path = connection, path
        return connection

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=OPEN_TIMEOUT, isolation_level=None)
        try:
            schema = _retry_while_busy(lambda: DiskCache._set_up(connection))
        except BaseException:
            connection.close()
            raise
        if schema is None or schema[0] != SCHEMA:
            connection.close()
            raise ForeignDatabase(f"not an lmql_nb result cache (schema {schema!r})")
        return connection

    @staticmethod
    def _set_up(connection: sqlite3.Connection) -> Optional[tuple]:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        connection.execute("CREATE TABLE IF NOT EXISTS results "
                           "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
        connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        return connection.execute("SELECT value FROM meta WHERE name='schema'").fetchone()

    def _move_aside(self, path: Path, error: Exception) -> None:
        aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
        warnings.warn(f"lmql_nb: the result cache {str(path)!r} is unreadable ({error}); "
                      f"moved it to {aside.name!r} and starting a new one", RuntimeWarning,
                      stacklevel=4)
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))

    def _run(self, operation: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            return operation(self._connection())
        except sqlite3.DatabaseError as error:
            if not _is_unusable(error):
                raise
            self.close()  # corrupted while open: start afresh
            self._move_aside(self.path, error)
            return operation(self._connection())

    def get(self, key: str) -> Optional[Any]:
        found = self.get_entry(key)
        return None if found is None else found[0]

    def get_entry(self, key: str) -> Optional[tuple[Any, float]]:
        """The stored value for `key` and when it was stored (time.time()), or None."""
        row = self._run(lambda c: c.execute("SELECT value, created FROM results WHERE key=?",
                                            (key,)).fetchone())
        if row is None:
            return None
        try:
            return json.loads(row[0]), float(row[1])
        except ValueError:
            return None

    def put(self, key: str, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False)
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                                      (key, text, time.time())))

    def clear(self) -> None:
        self._run(lambda c: c.execute("DELETE FROM results"))

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _retry_while_busy(operation: Callable[[], Any]) -> Any:
    """Run `operation`, retrying while another process holds a lock SQLite will not wait
    for by itself (switching a new file to WAL returns SQLITE_BUSY at once)."""
    deadline, pause = time.monotonic() + OPEN_TIMEOUT, 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


#: who hears of the remembered results a call used (see `watch_hits`)
_on_hit: contextvars.ContextVar[Optional[Callable[[float], None]]] = \
    contextvars.ContextVar("lmql_nb_cache_hits", default=None)


@contextlib.contextmanager
def watch_hits(callback: Callable[[float], None]) -> Iterator[None]:
    """While inside (in this task), call `callback(created)` for each result that comes
    from the cache, `created` being when it was computed (time.time()): a view can then
    say that a result was remembered, and how old it is, instead of a speed."""
    token = _on_hit.set(callback)
    try:
        yield
    finally:
        _on_hit.reset(token)


@dataclasses.dataclass
class ResultCache:
    """Memory in front of disk. `enabled` and `disk` are the global switches."""

    memory: MemoryCache
    disk_cache: DiskCache
    enabled: bool = True
    disk: bool = True

    def get(self, key: str, decode: Callable[[Any], Any]) -> Optional[Any]:
        """The remembered result for `key`, or None."""
        if not self.enabled:
            return None
        entry = self.memory.get(key)  # (value, created)
        if entry is None and self.disk:
            try:
                stored = self.disk_cache.get_entry(key)
                entry = (decode(stored[0]), stored[1]) if stored is not None else None
            except (sqlite3.Error, OSError, ValueError, TypeError, KeyError) as error:
                log.warning("lmql_nb: result cache read failed: %s", error)
                entry = None
            if entry is not None and entry[0] is not None:
                self.memory.put(key, entry)
        if entry is None or entry[0] is None:
            return None
        hit = _on_hit.get()
        if hit is not None:
            hit(entry[1])
        return entry[0]

    def put(self, key: str, value: Any, encode: Callable[[Any], Any]) -> None:
        """Remember `value` under `key` (in memory, and on disk when enabled)."""
        if not self.enabled:
            return
        self.memory.put(key, (value, time.time()))
        if self.disk:
            try:
                self.disk_cache.put(key, encode(value))
            except (sqlite3.Error, OSError) as error:
                log.warning("lmql_nb: result cache write failed: %s", error)

    def clear(self) -> None:
        """Forget every remembered result, in memory and on disk."""
        self.memory.clear()
        self.disk_cache.clear()


#: the process-wide cache every LLM uses
results = ResultCache(MemoryCache(), DiskCache(lambda: cache_dir("results") / "results.sqlite"))


def set_cache(enabled: bool = True, disk: bool = True) -> None:
    """Turn the result cache on or off for this process (`disk=False`: memory only)."""
    if not isinstance(enabled, bool) or not isinstance(disk, bool):
        raise TypeError("set_cache takes enabled=True|False and disk=True|False")
    results.enabled, results.disk = enabled, disk


def clear_cache() -> None:
    """Forget every remembered result, in memory and on disk."""
    results.clear()
