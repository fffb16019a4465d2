"""`lmql.runtime.program_state.ProgramState`: the program state a hole decorator is given
as its `context` (LMQL's decorators page annotates it so), which is lmql_nb's
`ProgramContext` (`context.prompt`, `context.variables`, ...)."""

from __future__ import annotations

from ..query.context import ProgramContext as ProgramState

__all__ = ["ProgramState"]
