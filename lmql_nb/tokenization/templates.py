"""Chat templates are Jinja code: every one is rendered here, under limits.

A model's own template, a `chat_template=` and a request's `chat_template` (refused by
the server unless it was started with `--trust-request-chat-template`, as vLLM does) all
run in Jinja's immutable
sandbox (no attribute tricks, no mutation of the messages), on a thread of its own (the
event loop keeps answering), under a time budget that a trace function enforces between
template statements, with `*`, `**` and `range` bounded so that no single operation
allocates gigabytes, and with its output size capped.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, Callable, Optional

#: seconds a request's chat template may run
TEMPLATE_SECONDS = 2.0
#: characters a rendered template may produce
MAX_RENDERED_CHARS = 4 * 2**20
#: items a `range`, or characters/items a `*` or `**` result, may have
MAX_ITEMS = 100_000


class TemplateError(ValueError):
    """The template failed, ran out of time, or tried something the sandbox forbids."""


def _environment() -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        """The immutable sandbox, with `*` and `**` checked before they run."""

        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**":
                if isinstance(right, (int, float)) and abs(right) > 64:
                    raise SecurityError("exponents above 64 are not allowed in a template")
            elif isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
                size = len(left) * right if isinstance(right, int) else len(right) * left
                if isinstance(size, int) and size > MAX_ITEMS:
                    raise SecurityError(f"a template may not build a sequence of more than "
                                        f"{MAX_ITEMS} items with *")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _check_sizes(args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    def _check_sizes(args: Any, kwargs: Any) -> None:
        """`"x".ljust(10**9)`, `"x"|center(10**9)`: no call may ask for a huge size."""
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ITEMS:
                raise SecurityError(f"a template may not pass numbers above {MAX_ITEMS} to "
                                    "a function or filter")

    def bounded(function: Callable) -> Callable:
        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_sizes(args, kwargs)
            return function(*args, **kwargs)
        for marker in ("jinja_pass_arg",):  # keep how Jinja passes context/environment
            if hasattr(function, marker):
                setattr(checked, marker, getattr(function, marker))
        return checked

    env = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True,
                             extensions=[loopcontrols, _generation_tag()])
    env.filters = {name: bounded(f) for name, f in env.filters.items()}

    def raise_exception(message: str) -> None:
        raise TemplateError(f"the template raised: {message}")

    import json

    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False,
                                                                  indent=indent)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    return env


def _generation_tag() -> Any:
    """transformers' `{% generation %}...{% endgeneration %}` (it marks the assistant's
    tokens for training masks): here it renders its body, as transformers does."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class GenerationTag(Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return GenerationTag


def _budget(deadline: float) -> Callable:
    """A trace function that raises TemplateError once `deadline` has passed."""

    def trace(frame: Any, event: str, arg: Any) -> Optional[Callable]:
        if time.monotonic() > deadline:
            raise TemplateError(f"the chat template ran longer than its budget of "
                                f"{TEMPLATE_SECONDS} s")
        return trace

    return trace


@functools.lru_cache(maxsize=32)
def _compiled(source: str) -> Any:
    """The template compiled in the sandbox (once per source: a template is rendered for
    every call)."""
    return _environment().from_string(source)


def render(source: str, messages: list[dict], add_generation_prompt: bool,
           special_tokens: dict[str, Any], seconds: float = TEMPLATE_SECONDS) -> str:
    """Render the chat template `source` over `messages`.

    The template sees `messages`, `add_generation_prompt` and `special_tokens` (the
    model's `bos_token`, `eos_token`, ... texts), as transformers' templates expect.
    Raises TemplateError (a ValueError).
    """
    from jinja2 import TemplateError as JinjaError

    deadline = time.monotonic() + seconds
    previous = sys.gettrace()
    sys.settrace(_budget(deadline))
    try:
        template = _compiled(source)
        pieces = []
        size = 0
        for piece in template.generate(messages=messages,
                                       add_generation_prompt=add_generation_prompt,
                                       **special_tokens):
            size += len(piece)
            if size > MAX_RENDERED_CHARS:
                raise TemplateError(f"the chat template produced more than "
                                    f"{MAX_RENDERED_CHARS} characters")
            pieces.append(piece)
        return "".join(pieces)
    except TemplateError:
        raise
    except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError,
            MemoryError) as error:
        raise TemplateError(f"the chat template failed: {type(error).__name__}: {error}") from None
    finally:
        sys.settrace(previous)
