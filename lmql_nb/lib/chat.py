"""LMQL's chat library (`lmql.lib.chat`): the `@message` hole decorator.

    from lmql_nb.lib.chat import message

    "{:assistant} [@message ANSWER]"

marks the hole's text as what the chat's user sees (`HoleSegment.message`; the trace
view tags the hole "message"); holes without it are the program's internal reasoning.
It leaves the value as it is.
"""

from __future__ import annotations

from typing import Any

from ..query.decorators import LMQLDecorator


class _Message(LMQLDecorator):
    """`@message`: the hole's text is shown to the chat's user (see the module doc)."""

    def post(self, variable_value: Any, prompt_value: str, context: Any) -> Any:
        return variable_value, prompt_value

    def __repr__(self) -> str:
        return "message"


message = _Message()
