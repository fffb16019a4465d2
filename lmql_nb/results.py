"""Deprecated import path: use `lmql_nb.core.results` (or the names exported by `lmql_nb`)."""

from .core.results import *  # noqa: F401,F403
