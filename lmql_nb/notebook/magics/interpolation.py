"""`{name}` interpolation of magic arguments from the user's namespace.

`{name}`, `{name.attr}`, `{name[0]}` and format specs (`{x:.2f}`) work as in `str.format`;
`{{` and `}}` are literal braces. An unknown name or a stray brace is an error that says
what to write instead. A prompt that is exactly `{name}` of a conversation (a list of
`{"role": ..., "content": ...}` messages) is that conversation.
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping

from ...errors import InterpolationError

_WHOLE_FIELD = re.compile(r"^\{([^{}:!]+)\}$")


class _Formatter(string.Formatter):
    def __init__(self, namespace: Mapping[str, Any]):
        self.namespace = namespace

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(key, int) or key == "":
            raise InterpolationError(
                "empty or numbered field {} in the text: put a variable name between the "
                "braces, or write {{ and }} for literal braces")
        try:
            return self.namespace[key]
        except KeyError:
            raise InterpolationError(
                f"unknown name {key!r} in {{{key}}}: define {key} in the notebook first, "
                f"or write {{{{ and }}}} for literal braces") from None


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    """`template` with every `{field}` filled from `namespace`."""
    try:
        return _Formatter(namespace).vformat(template, (), {})
    except InterpolationError:
        raise
    except (ValueError, AttributeError, IndexError, KeyError, TypeError) as error:
        raise InterpolationError(
            f"cannot fill the braces in {template!r}: {error}. Write {{{{ and }}}} for "
            "literal braces") from None


def interpolate_values(argument: str, namespace: Mapping[str, Any]) -> list[str]:
    """Like `interpolate`, except that an argument that is exactly `{name}` naming a list
    or tuple of strings expands to those strings (several values)."""
    match = _WHOLE_FIELD.match(argument)
    if match:
        value = _whole_field(match, argument, namespace)
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise InterpolationError(
                        f"{argument} expands to values, which must be strings; item {i} is "
                        f"{type(item).__name__} {item!r}")
            return list(value)
    return [interpolate(argument, namespace)]


def interpolate_prompt(template: str, namespace: Mapping[str, Any]) -> Any:
    """Like `interpolate`, except that a prompt that is exactly `{name}` naming a
    conversation (a list of message dicts) is that conversation, checked (the magics then
    render it through the model's chat template); any other prompt is text."""
    match = _WHOLE_FIELD.match(template.strip())
    if match:
        from ...tokenization.chat import check_messages, is_conversation

        value = _whole_field(match, template.strip(), namespace)
        if is_conversation(value):
            try:
                return check_messages(value, template.strip())
            except (TypeError, ValueError) as error:
                raise InterpolationError(str(error)) from None
    return interpolate(template, namespace)


def _whole_field(match: "re.Match[str]", text: str, namespace: Mapping[str, Any]) -> Any:
    """The value a text that is exactly one `{field}` names."""
    try:
        value, _ = _Formatter(namespace).get_field(match.group(1), (), {})
    except InterpolationError:
        raise
    except (AttributeError, IndexError, KeyError, TypeError) as error:
        raise InterpolationError(f"cannot fill {text}: {error}") from None
    return value
