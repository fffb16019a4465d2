"""Every exception (and warning) lmql_nb raises that a caller may want to catch.

Bad input is a plain `TypeError` or `ValueError` whose message names what was wrong and
what is accepted; the classes here are for what goes wrong beyond that. This module
imports nothing from lmql_nb, so any layer can raise these and any caller can catch
them without loading a backend.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class BackendError(RuntimeError):
    """A backend could not do what was asked: a request to a server failed (after
    retries, where retrying made sense), or a server answered something unusable."""


#: the name this error had while only the OpenAI backend raised it
OpenAIBackendError = BackendError


class ScoringNotSupported(BackendError):
    """This model (or the server behind it) cannot score exactly; the message says what
    would work instead."""


class ApproximateScoreWarning(UserWarning):
    """Scores came from the first-token approximation, not exact prompt log-probabilities."""


class ConstraintError(ValueError):
    """The constraint cannot go on: no token of the model continues the text in a way it
    allows, or the constraint engine reached its limits on this text (a ValueError: the
    constraint asks for what this model cannot give; HTTP 400)."""


class ForeignDatabase(sqlite3.DatabaseError):
    """The result cache's file is a SQLite database, but not one of lmql_nb's."""


class ClauseError(ValueError):
    """An unsupported or malformed where clause; `node` (an `ast` node) is the offending
    part."""

    def __init__(self, message: str, node: Any):
        super().__init__(message)
        self.node = node


class PromptStringError(ValueError):
    """A malformed prompt string of a query program; `offset` is the position in the
    string's value."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


class MagicUsageError(ValueError):
    """Bad arguments to a magic: the message says what was wrong and what is accepted."""


class InterpolationError(ValueError):
    """A `{...}` field in a magic's text that cannot be filled from the namespace."""


__all__ = ["BackendError", "OpenAIBackendError", "ScoringNotSupported",
           "ApproximateScoreWarning", "ConstraintError", "ForeignDatabase", "ClauseError",
           "PromptStringError", "MagicUsageError", "InterpolationError"]
