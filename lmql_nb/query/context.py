"""`context`: what a running program knows about itself, as LMQL's programs read it.

    "Q: {question} A:[ANSWER]"
    assert context.prompt.endswith(ANSWER)

Inside a query program the name `context` (unless the program binds it itself) is the
running execution's `ProgramContext`:

- `context.prompt`: the prompt so far (every prompt statement and filled hole);
- `context.variables`: the holes filled so far (name -> value, as `LMQLResult.variables`);
- `await context.get_var(name)`: one of them;
- `context.num_calls`: how many model calls the execution has made;
- `await context.score(values)`: the model's scores of `values` as continuations of the
  prompt so far (an `lmql_nb.ScoringResult`, as `lmql_nb.score`).
"""

from __future__ import annotations

from typing import Any, Protocol, Union

from .trace import Trace, model_calls


class Execution(Protocol):
    """What a context reads of a running execution (the runtime's `Execution`)."""

    prompt: str
    variables: dict[str, Any]
    trace: Trace
    runner: Any  # its `settings` name the model and whether results are cached


class ProgramContext:
    """A running execution seen from inside the program (read-only)."""

    def __init__(self, execution: Execution):
        self._execution = execution

    @property
    def prompt(self) -> str:
        """The prompt so far."""
        return self._execution.prompt

    @property
    def variables(self) -> dict[str, Any]:
        """The holes (and distribution variables) filled so far."""
        return dict(self._execution.variables)

    @property
    def num_calls(self) -> int:
        """The model calls made so far (holes filled and distributions scored)."""
        return model_calls(self._execution.trace)

    async def get_var(self, name: str) -> Any:
        """The value of hole `name` (KeyError if it was not filled yet)."""
        variables = self._execution.variables
        if name not in variables:
            raise KeyError(f"{name!r} is no hole filled so far (filled: "
                           f"{', '.join(variables) or 'none'})")
        return variables[name]

    async def score(self, values: Union[str, list[str]], **options: Any) -> Any:
        """Score `values` as continuations of the prompt so far (see `LLM.score`)."""
        runner = self._execution.runner
        options.setdefault("cache", runner.settings.cache)
        return await runner.settings.model.score(self.prompt, values, **options)

    def __repr__(self) -> str:
        return f"<lmql_nb program context: {len(self.prompt)} characters of prompt>"
