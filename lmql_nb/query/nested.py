"""Nested queries: a hole filled by another query function, `[ANSWER: chain_of_thought]`.

    "Q: {question} [ANSWER: chain_of_thought]"      # a query function
    "[ANSWER: one_of(['Paris', 'London'])]"          # with arguments (not called by Python)
    "[ANSWER: self.chain_of_thought]"                # a query method

As in LMQL 0.7.3, the inner query runs in the outer program's context: its prompt
statements continue the outer prompt (the same model and decoder; the inner program's own
`from` and decoder clauses are ignored), so its holes see everything before the hole, and
the engine's prefix cache continues the same prompt. When it finishes:

- with a `return` value: the instructions it added are taken out of the prompt again
  (hidden) and the hole's value is the returned value, its prompt text `str(value)`;
- without one (a macro): what it added stays, and is the hole's value and text.

`where` constraints written on the outer hole apply to every hole the inner query fills
(so `[ANSWER: one_of(choices)] where len(TOKENS(ANSWER)) < 4` bounds the inner answer).
Under `beam(n=k)`, the inner query's holes each take their best beam; the outer program's
holes branch as usual. The trace keeps what the inner query saw and returned as a
`NestedSegment` (its own trace inside).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional




@dataclasses.dataclass(frozen=True)
class DeferredCall:
    """`f(args)` written as a hole's type: not called by Python, but handed to the runtime
    (a query function runs nested with these arguments; anything else is called then)."""

    function: Any
    args: tuple
    kwargs: dict

    def resolve(self) -> Any:
        """A nested query to run, or the value of the call (a type for the hole)."""
        if is_query(self.function):
            return self
        return self.function(*self.args, **self.kwargs)


def is_query(value: Any) -> bool:
    """Whether `value` is a query function (or a query method bound to an object)."""
    return bool(getattr(value, "__lmql_query__", False)) and hasattr(value, "program")


def nested_target(tactic: Any) -> Optional[tuple[Any, tuple, dict]]:
    """`(query function, args, kwargs)` when the hole's type names a nested query."""
    if isinstance(tactic, DeferredCall) and is_query(tactic.function):
        function, args, kwargs = tactic.function, tactic.args, tactic.kwargs
    elif is_query(tactic):
        function, args, kwargs = tactic, (), {}
    else:
        return None
    bound = getattr(function, "bound_to", None)
    if bound is not None:  # a query method: self comes first
        function, args = function.function, (bound[0],) + tuple(args)
    return function, tuple(args), dict(kwargs)


def describe_call(function: Any, args: tuple, kwargs: dict, bound: bool) -> str:
    """`name(arg reprs)` for the trace (reprs shortened)."""
    shown = [_short(a) for a in (args[1:] if bound else args)]
    shown += [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{function.__name__}({', '.join(shown)})"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def stable_prefix(prompt: str) -> str:
    """`prompt` without its last word and what follows it: text whose tokens stay the
    same whatever is appended (a word may merge with what follows it, a space with the
    next word)."""
    text = prompt.rstrip()
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut] if cut > 0 else ""
