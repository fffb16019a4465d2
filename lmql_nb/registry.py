"""Deprecated import path: use `lmql_nb.backends.registry` (or the names exported by `lmql_nb`)."""

from .backends.registry import *  # noqa: F401,F403
