"""Deprecated import path, kept for one release: use `lmql_nb.backends.registry` (or the names
`lmql_nb` exports)."""

from .core.deprecation import moved
from .backends.registry import *  # noqa: F401,F403

moved(__name__, "lmql_nb.backends.registry")
