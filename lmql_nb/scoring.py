"""Deprecated import path: use `lmql_nb.core.scoring` (or the names exported by `lmql_nb`)."""

from .core.scoring import *  # noqa: F401,F403
