"""Hole decorators, `[@fn X]`, as LMQL 0.7.3 defines them (`lmql.decorators`).

A hole may carry decorators: `"[@screaming @stream TEST]"`. Each is a Python expression
of the program (a name, an attribute, or a call such as `@prefix("> ")`) evaluated when
the hole is reached, and acts at up to three stages:

- pre (before the model is asked; in the order written): `@lmql.decorators.pre` functions
  take the hole's `TemplateVariable` (its `.name`) and, optionally, the program state;
  returning it unchanged lets the model fill the hole, returning anything else fixes the
  hole's value (its prompt text is `str(value)`, or give `(value, prompt_text)`) and no
  model call is made.
- streaming (while the model generates; `@lmql.decorators.streaming`): called with the
  hole's text so far (first with `""`) and the program state, once per token.
- post (after the hole is filled; in reverse order): a plain function taking the value,
  or `(value, prompt_value, context)`; it returns the new value (the prompt then holds
  `str(value)`), a `(value, prompt_value)` tuple, or None to change nothing.

A class deriving from `LMQLDecorator` may implement any of `pre`, `stream`, `post`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Optional


@dataclasses.dataclass(frozen=True)
class TemplateVariable:
    """The hole a pre-decorator is asked about (LMQL's `TemplateVariable`)."""

    name: str


class LMQLDecorator:
    """Base class of a decorator that hooks into several stages (see the module doc)."""

    def pre(self, variable: TemplateVariable, context: Any) -> Any:
        """Before generation: return `variable` to generate, anything else to fix the value."""
        return variable

    def stream(self, variable_value: str, context: Any) -> Any:
        """While generating: called with the hole's text so far."""
        return variable_value

    def post(self, variable_value: Any, prompt_value: str, context: Any) -> Any:
        """After generation: the new `(value, prompt_value)`."""
        return variable_value, prompt_value


def _arity(function: Callable) -> int:
    try:
        return len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return 1


class _PostFunction(LMQLDecorator):
    """A plain function used as a decorator: post-processes the value."""

    def __init__(self, function: Callable):
        self.function = function
        self.arity = _arity(function)

    def post(self, variable_value: Any, prompt_value: str, context: Any) -> Any:
        if self.arity == 1:
            result = self.function(variable_value)
        else:
            result = self.function(variable_value, prompt_value, context)
        if result is None:
            return variable_value, prompt_value
        if isinstance(result, tuple):
            if len(result) != 2:
                raise ValueError(f"decorator {_name(self.function)} returned a tuple of "
                                 f"{len(result)}; a post decorator returns a value, a (value, "
                                 "prompt_value) pair, or None")
            return result
        return result, str(result)


class pre(LMQLDecorator):
    """Marks a function as a pre-stage decorator: `f(variable)` or `f(variable, context)`,
    returning `variable` (generate as usual) or a fixed value for the hole."""

    def __init__(self, decorator_fn: Callable):
        self.decorator_fn = decorator_fn
        self.arity = _arity(decorator_fn)
        self.__name__ = _name(decorator_fn)

    def pre(self, variable: TemplateVariable, context: Any) -> Any:
        if self.arity == 1:
            return self.decorator_fn(variable)
        return self.decorator_fn(variable, context)


class streaming(LMQLDecorator):
    """Marks a function as a streaming decorator: `f(text_so_far, context)` per token."""

    def __init__(self, decorator_fn: Callable):
        self.decorator_fn = decorator_fn
        self.__name__ = _name(decorator_fn)

    def stream(self, variable_value: str, context: Any) -> Any:
        result = self.decorator_fn(variable_value, context)
        return variable_value if result is None else result


def _name(function: Any) -> str:
    return getattr(function, "__name__", None) or type(function).__name__


def wrap(decorator: Any, source: str) -> LMQLDecorator:
    """`decorator` (the value of `@source`) as an `LMQLDecorator`."""
    if isinstance(decorator, LMQLDecorator):
        return decorator
    if isinstance(decorator, type) and issubclass(decorator, LMQLDecorator):
        raise TypeError(f"[@{source} ...]: {decorator.__name__} is a decorator class; use an "
                        f"instance, e.g. [@{source}() ...]")
    if callable(decorator):
        return _PostFunction(decorator)
    raise TypeError(f"[@{source} ...]: a decorator must be a function, an "
                    f"lmql.decorators.pre/streaming function or an LMQLDecorator instance, "
                    f"got {type(decorator).__name__}")


@dataclasses.dataclass
class DecoratorList:
    """A hole's decorators, with their sources (for errors and the trace)."""

    decorators: list[LMQLDecorator]
    sources: list[str]

    @classmethod
    def of(cls, values: tuple, sources: tuple[str, ...]) -> "DecoratorList":
        return cls([wrap(v, s) for v, s in zip(values, sources)], list(sources))

    def has_stage(self, stage: str) -> bool:
        """Whether any decorator overrides `stage` (pre, stream or post)."""
        base = getattr(LMQLDecorator, stage)
        return any(getattr(type(d), stage) is not base for d in self.decorators)

    def pre(self, name: str, context: Any) -> Optional[tuple[Any, str, str]]:
        """Run the pre stage: None to generate, or `(value, prompt_value, source)` of the
        decorator that fixed the hole."""
        variable = TemplateVariable(name)
        for decorator, source in zip(self.decorators, self.sources):
            result = decorator.pre(variable, context)
            if result is not variable:
                if isinstance(result, tuple) and len(result) == 2:
                    return result[0], str(result[1]), source
                return result, str(result), source
        return None

    def stream(self, text: str, context: Any) -> None:
        for decorator in reversed(self.decorators):
            decorator.stream(text, context)

    def post(self, value: Any, prompt_value: str, context: Any) -> list[tuple[str, Any, str]]:
        """Run the post stage (last decorator first): each step's (source, value,
        prompt_value) after it."""
        steps = []
        for decorator, source in zip(reversed(self.decorators), reversed(self.sources)):
            value, prompt_value = decorator.post(value, prompt_value, context)
            steps.append((source, value, str(prompt_value)))
        return steps


__all__ = ["LMQLDecorator", "TemplateVariable", "pre", "streaming"]
