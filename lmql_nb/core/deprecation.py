"""Warnings for import paths that moved (kept working for one release)."""

from __future__ import annotations

import warnings


def moved(old: str, new: str) -> None:
    """Warn that module `old` is now `new`: a DeprecationWarning attributed to the line
    that imported `old` (call it from `old`'s top level).

    `warnings` passes over importlib's own frames when it counts `stacklevel`, so level 3
    (this function, the shim module, its importer) is the user's import statement, and
    Python shows the warning by default when that statement is in the script being run.
    """
    warnings.warn(f"{old} is deprecated and goes in the next release: import from {new} "
                  "(or from lmql_nb itself) instead", DeprecationWarning, stacklevel=3)
