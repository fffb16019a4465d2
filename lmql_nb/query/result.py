"""`LMQLResult`: what a query program returns when it has no `return` statement."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Optional

from ..core.display_hooks import mimebundle
from .trace import Trace


@dataclasses.dataclass
class LMQLResult:
    """One program execution's outcome, as LMQL defines it.

    `prompt` is the full text (holes filled); `variables` maps each hole's name to its
    value, plus `"P(X)"` (a list of `(value, probability)` pairs) for a
    `distribution X in [...]` clause; `distribution_variable` / `distribution_values` name
    that clause. `trace` is the execution segment by segment (`lmql_nb.query.trace`);
    `model` the identifier of the model that ran it.
    `limits` maps each hole that a bound ended (rather than the model or its
    constraints) to that bound: `{"N": "max_len=2048"}` (see `HoleSegment.limit`).
    """

    prompt: str
    variables: dict[str, Any]
    distribution_variable: Optional[str] = None
    distribution_values: Optional[list[str]] = None
    trace: Trace = dataclasses.field(default_factory=Trace, repr=False)
    model: str = ""
    limits: dict[str, str] = dataclasses.field(default_factory=dict)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, the trace view; `text/plain` stays the dataclass repr."""
        return mimebundle(self)

    def __getitem__(self, index: int) -> "LMQLResult":
        """`result[0]` is the result itself, as in LMQL (where argmax queries once
        returned a list of one result); deprecated there and here."""
        if isinstance(index, int) and not isinstance(index, bool) and index in (0, -1):
            warnings.warn("result[0] on a single LMQLResult: the query returned one result, "
                          "use it directly", DeprecationWarning, stacklevel=2)
            return self
        raise IndexError(f"an LMQLResult is one result: only result[0] reads it (as in "
                         f"LMQL), got result[{index!r}]")

    def __getattr__(self, name: str) -> Any:
        # LMQL lets `result.NAME` read a hole's value.
        variables = self.__dict__.get("variables", {})
        if name in variables:
            return variables[name]
        raise AttributeError(name)
