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
from typing import TYPE_CHECKING, Any, Optional

from ..constraints.where import Where, join_where
from .result import LMQLResult
from .trace import NestedFinished, NestedSegment, NestedStarted

if TYPE_CHECKING:
    from .compiler import HoleSite
    from .runtime import Execution


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


async def run_nested(parent: "Execution", site: "HoleSite", tactic: Any,
                     outer_where: Optional[Where]) -> NestedSegment:
    """Run the nested query `tactic` names for hole `site` of `parent`; its segment."""
    from .functions import OPTIONS
    from .runtime import NO_VALUE, Execution, Runner

    target = nested_target(tactic)
    assert target is not None
    function, args, kwargs = target
    refused = [k for k in kwargs if k in OPTIONS]
    if refused:
        raise ValueError(f"[{site.name}: {function.__name__}(...)]: a nested query runs with "
                         f"the outer program's model and decoder; it takes no "
                         f"{', '.join(refused)}=")
    is_method = getattr(tactic if not isinstance(tactic, DeferredCall) else tactic.function,
                        "bound_to", None) is not None
    label = describe_call(function, args, kwargs, is_method)
    arguments = function._arguments(args, kwargs)
    outer = parent.runner
    runner = Runner(function.program, function._function, arguments, outer.settings)
    runner.emit = outer.emit  # type: ignore[method-assign]  # one stream of events
    runner.outer_where = _joined(getattr(outer, "outer_where", None), outer_where)
    runner._tokenizer = outer._tokenizer
    child = Execution(runner, parent.slot)
    child.prompt = parent.prompt
    child.hole_count = parent.hole_count
    child.depth = parent.depth + 1
    child.outer = parent.outer + parent.trace.segments  # chat tags before the hole count
    parent.emit(NestedStarted(site.name, label))
    await _checkpoint(parent)
    value = await function._function(child, **arguments)
    parent.hole_count = child.hole_count
    outer._tokenizer = runner._tokenizer
    added = child.prompt[len(parent.prompt):]
    returned = value is not NO_VALUE and not isinstance(value, LMQLResult)
    text = str(value) if returned else added
    segment = NestedSegment(site.name, label, child.trace, text,
                            value if returned else added, hidden=returned)
    parent.emit(NestedFinished(segment))
    return segment


def stable_prefix(prompt: str) -> str:
    """`prompt` without its last word and what follows it: text whose tokens stay the
    same whatever is appended (a word may merge with what follows it, a space with the
    next word)."""
    text = prompt.rstrip()
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut] if cut > 0 else ""


async def _checkpoint(parent: "Execution") -> None:
    """Have the model's prefix cache hold the outer prompt before the inner query adds
    its text. The inner query's holes continue it, and so does the outer prompt after the
    nested query, which a hidden inner text is no prefix of: without this state, the next
    hole would compute the whole prompt again. Only the in-process transformers engine
    continues the longest cached prefix (llama.cpp reuses exact prompts only, and a remote
    server's cache is its own), so only there is this done. Scoring one one-token value
    runs the prefix alone. (`cache=False` turns the prefix cache off too: then nothing.)"""
    if not parent.runner.settings.cache:
        return
    model = parent.runner.settings.model
    if not model.model_identifier.startswith("local:"):
        return
    text = stable_prefix(parent.prompt)
    if len(text) >= 32:
        await model.score(text, [" ."], cache=parent.runner.settings.cache)


def _joined(first: Optional[Where], second: Optional[Where]) -> Optional[Where]:
    return join_where(first, second)
