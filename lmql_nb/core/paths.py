"""Where lmql_nb keeps its caches, and how it writes them without half-written states."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

CACHE_ENV = "LMQL_NB_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """The user cache folder (or `$LMQL_NB_CACHE_DIR`), created on demand."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("lmql_nb", appauthor=False)
    path = Path(root, *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file in the way, no permission, a read-only disk
        raise OSError(f"lmql_nb's cache folder {str(path)!r} cannot be created or used "
                      f"({error.strerror or error}); set {CACHE_ENV} to a writable "
                      "folder") from None
    return path


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it becomes `target`.

    The rename is atomic, so another process sees either no folder or a complete one.
    If `target` appeared meanwhile (another process finished first), ours is discarded.
    On an error the temporary folder is removed and `target` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield temporary
        try:
            os.rename(temporary, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)



#: bytes read from each end of a file for its `file_fingerprint`
FINGERPRINT_SPAN = 1 << 20


def file_fingerprint(path: Path) -> list:
    """[size, sha256 of the first and last MiB]: cheap to recompute on every use (no
    gigabytes read), and it tells a truncated or overwritten file from the one written."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        digest.update(file.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            file.seek(max(FINGERPRINT_SPAN, size - FINGERPRINT_SPAN))
            digest.update(file.read())
    return [size, digest.hexdigest()[:32]]


def folder_fingerprints(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, list]:
    """`file_fingerprint` of every file under `folder` (by relative path), but `skip`."""
    return {str(path.relative_to(folder)): file_fingerprint(path)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name not in skip}


def gguf_key(path: Path) -> str:
    """A cache key for a GGUF file: its resolved path, size and modification time."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
