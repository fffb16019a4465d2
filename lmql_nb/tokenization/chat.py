"""Conversations: checked messages, the model's chat template, and their token ids.

This is the one rendering path: the Generations API, query programs (`{:user}` tags) and
the server's `/v1/chat/completions` all turn messages into token ids here. A template is
Jinja code, so it always runs in the sandbox of `templates` (time, size and operation
limits), with what transformers passes to it (`messages`, `add_generation_prompt`, the
special tokens' texts, `tools`/`documents` as None). The messages' content is text
(`encode_chat`): a content that spells a turn marker gets the marker's characters.

Where the template comes from, first match wins: `model(..., chat_template=...)` (a
template or a file holding one), the model's own (a transformers folder's
`chat_template.jinja` / `tokenizer_config.json` as transformers loads it, a GGUF's
`tokenizer.chat_template`), and for the embedded Gemma 3 270M, which carries none,
Gemma's own turn format (`GEMMA_TEMPLATE`). Otherwise a ValueError names `chat_template`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..core.text import check_text
from .templates import TemplateError, render
from .tokenizer import common_prefix_length, encode_chat

ROLES = ("system", "user", "assistant")

#: marks where an open turn's content ends in a rendering (noncharacters: no template
#: writes them, and messages may not hold them)
OPEN_TURN = "\ufdd0\ufdd1"

#: Gemma's own turn format (Gemma 3's template, text only): the embedded Gemma's
#: vocabulary has `<start_of_turn>` / `<end_of_turn>`; a system message opens the first
#: user turn, as Gemma's template does
GEMMA_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

#: where GEMMA_TEMPLATE came from, as errors and views name it
GEMMA_ORIGIN = "Gemma's turn format (built in: the embedded model carries no template)"


def is_conversation(prompt: Any) -> bool:
    """True if `prompt` is shaped as a conversation: a list of mappings (messages)."""
    return (isinstance(prompt, (list, tuple)) and bool(prompt)
            and all(isinstance(item, Mapping) for item in prompt))


def check_messages(messages: Any, name: str = "messages") -> list[dict[str, str]]:
    """`messages` as a list of `{"role", "content"}` dicts, or a clear error.

    Accepted: a non-empty list of dicts, each with `role` ("system", "user" or
    "assistant") and `content` (a str), the OpenAI shape.
    """
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"{name} must be a list of {{'role': ..., 'content': ...}} dicts, "
                        f"got {type(messages).__name__}")
    if not messages:
        raise ValueError(f"{name} is an empty conversation: pass at least one message")
    checked = []
    for i, message in enumerate(messages):
        where = f"{name}[{i}]"
        if not isinstance(message, Mapping):
            raise TypeError(f"{where} must be a dict with 'role' and 'content', got "
                            f"{type(message).__name__}")
        extra = sorted(set(message) - {"role", "content"}, key=str)
        if extra:
            raise ValueError(f"{where} has the key(s) {extra}; a message has 'role' and "
                             "'content' only")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"{where}['role'] is {role!r}; accepted: {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise TypeError(f"{where}['content'] must be a str, got {type(content).__name__}")
        if OPEN_TURN in content:
            raise ValueError(f"{where}['content'] holds U+FDD0 U+FDD1 (noncharacters that "
                             "lmql_nb reserves); remove them")
        checked.append({"role": role, "content": check_text(content, f"{where}['content']")})
    return checked


def prompt_text(prompt: Any) -> str:
    """A prompt as text for views and tables: a str as it is, a conversation as one
    `role: content` line per message."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in prompt)


def template_source(value: Any) -> str:
    """The template `model(..., chat_template=...)` names: a Jinja template, or the path of
    a file holding one (`.jinja`, or any file whose text is a template)."""
    if isinstance(value, Path) or (isinstance(value, str) and "{" not in value
                                   and "\n" not in value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"chat_template={str(value)!r} is neither a Jinja template (it "
                             "has no '{{' or '{%') nor a file: pass the template's text or "
                             "the path of a file holding it")
        value = path.read_text(encoding="utf-8")
    if not isinstance(value, str):
        raise TypeError(f"chat_template must be a str (a Jinja template or a file path), got "
                        f"{type(value).__name__}")
    if "{{" not in value and "{%" not in value:
        raise ValueError("chat_template has no Jinja markup ('{{' or '{%'): pass a chat "
                         "template such as a model's chat_template.jinja")
    return value


class ChatFormat:
    """A chat template bound to a tokenizer: messages to token ids, replies to the ids
    they are scored as, and the template's end-of-turn token.

    `origin` says where the template came from (for errors and views).
    """

    def __init__(self, tokenizer: Any, source: str, origin: str,
                 special_tokens: Optional[dict[str, Any]] = None):
        self.tokenizer = tokenizer
        self.source = source
        self.origin = origin
        self.special_tokens = dict(special_tokens if special_tokens is not None
                                   else default_special_tokens(tokenizer))

    def __repr__(self) -> str:
        return f"ChatFormat(origin={self.origin!r})"

    @property
    def fingerprint(self) -> str:
        """A hash of the template (for result caches)."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()[:16]

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
        """The conversation as the template writes it (sandboxed; TemplateError, a
        ValueError, when the template refuses the messages)."""
        variables = {"tools": None, "documents": None, **self.special_tokens}
        return render(self.source, list(messages), add_generation_prompt, variables)

    def prompt(self, messages: Sequence[dict]) -> tuple[list[int], str]:
        """The token ids the model continues for a conversation, and their text.

        A conversation that ends with an assistant's message continues that message (its
        content as written, its turn left open: transformers'
        `continue_final_message=True`); any other opens the assistant's turn
        (`add_generation_prompt=True`)."""
        conversation, rendered = self._renderer(messages)
        return encode_chat(self.tokenizer, conversation, rendered), rendered(conversation)

    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        """The token ids of `prompt`: what transformers' `apply_chat_template(messages,
        add_generation_prompt=True)` gives for a conversation ending with a user's turn."""
        conversation, rendered = self._renderer(messages)
        return encode_chat(self.tokenizer, conversation, rendered)

    def encode(self, messages: Sequence[dict], add_generation_prompt: bool) -> list[int]:
        """The token ids of the template's plain rendering (the server's
        `/v1/chat/completions`, as vLLM renders: an assistant's last message is a
        finished turn)."""
        def rendered(conversation: list[dict]) -> str:
            return self.render(conversation, add_generation_prompt)

        return encode_chat(self.tokenizer, list(messages), rendered)

    def _renderer(self, messages: Sequence[dict]) -> tuple[list[dict], Callable[[list[dict]], str]]:
        """The messages to render, and how: with the generation prompt, or (after an
        assistant's message) up to the end of the last message's content."""
        if messages[-1]["role"] != "assistant":
            return list(messages), lambda conversation: self.render(conversation, True)
        last = messages[-1]
        marked = [*messages[:-1], dict(last, content=last["content"] + OPEN_TURN)]

        def rendered(conversation: list[dict]) -> str:
            text = self.render(conversation, False)
            if OPEN_TURN not in text:
                raise TemplateError(f"the chat template ({self.origin}) leaves the last "
                                    "message's content out, so its turn cannot be continued")
            return text[:text.rindex(OPEN_TURN)]

        return marked, rendered

    def split(self, messages: Sequence[dict], value: str) -> tuple[list[int], list[int]]:
        """(context ids, value ids) of `value` scored after a conversation.

        After a conversation that ends with a user's (or system) message, `value` is the
        assistant's whole reply: its text, then the end-of-turn token (how likely the
        model is to answer exactly this and end its turn). After one that ends with an
        assistant's message, `value` continues that message, tokenised jointly with it
        (a token straddling the boundary belongs to the value), with no end of turn.
        """
        if messages[-1]["role"] != "assistant":
            return self.prompt_ids(messages), self.reply_ids(value)
        context = self.prompt_ids(messages)
        last = messages[-1]
        joint = self.prompt_ids([*messages[:-1], dict(last, content=last["content"] + value)])
        shared = common_prefix_length(context, joint)
        return context[:shared], joint[shared:]

    @functools.cached_property
    def end_of_turn(self) -> Optional[int]:
        """The token that ends the assistant's turn: the first special token the template
        writes after an assistant message's content (`<end_of_turn>`, `<|im_end|>`,
        `<|eot_id|>`), else the end-of-sequence token."""
        marker = OPEN_TURN
        spellings: dict[str, int] = self.tokenizer.special_spellings()
        try:
            text = self.render([{"role": "user", "content": "question"},
                                {"role": "assistant", "content": marker}], False)
        except TemplateError:
            text = ""
        if marker in text:
            after = text[text.index(marker) + len(marker):]
            found = [(after.find(s), -len(s), s) for s in spellings if s and s in after]
            if found:
                return spellings[min(found)[2]]
        return self.tokenizer.eos_token_id

    def reply_ids(self, reply: str) -> list[int]:
        """The tokens a reply is scored as in the assistant's turn: its text (read as
        text), then the end-of-turn token, so a score says how likely the model is to
        answer exactly this and end its turn."""
        ids = list(self.tokenizer.encode_text(reply))
        if self.end_of_turn is not None:
            ids.append(self.end_of_turn)
        return ids

    def pieces(self, context: Sequence[int], ids: Sequence[int]) -> list[str]:
        """The text each of `ids` adds after `context`; a special token (the end of the
        turn) by its spelling, so a view can show it (muted)."""
        from .tokenizer import token_pieces

        spelled = {token: spelling for spelling, token in
                   self.tokenizer.special_spellings().items()}
        pieces, run_start = [], 0
        for i, token in enumerate([*ids, None]):
            if token is None or token in spelled:
                pieces += token_pieces(self.tokenizer, [*context, *ids[:run_start]],
                                       ids[run_start:i])
                if token is not None:
                    pieces.append(spelled[token])
                run_start = i + 1
        return pieces

    def control_ids(self) -> frozenset[int]:
        """The template's control tokens (special tokens): views mute them."""
        return frozenset(self.tokenizer.special_spellings().values())


def default_special_tokens(tokenizer: Any) -> dict[str, Any]:
    """The special tokens' texts a template sees, as transformers passes them
    (`bos_token`, `eos_token`, ... from the tokenizer's special tokens map)."""
    hf = getattr(tokenizer, "hf", None)
    if hf is not None:
        return dict(getattr(hf, "special_tokens_map", {}) or {})
    found: dict[str, Any] = {}
    for name in ("bos", "eos"):
        token = getattr(tokenizer, f"{name}_token_id", None)
        if token is not None:
            found[f"{name}_token"] = tokenizer.convert_ids_to_tokens([token])[0]
    return found


def model_template(tokenizer: Any) -> Optional[str]:
    """The template the model itself carries (None if none): transformers' tokenizer's
    `chat_template` (its "default" where it holds several), a GGUF's."""
    template = getattr(tokenizer, "chat_template_source", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) and template else None


def resolve(tokenizer: Any, override: Optional[str], model_id: str,
            fallback: Optional[tuple[str, str]] = None) -> ChatFormat:
    """The chat format of a model: `override` (from `chat_template=`), the model's own
    template, or `fallback` (source, origin); else a ValueError naming `chat_template`."""
    if override is not None:
        return ChatFormat(tokenizer, override, "chat_template=")
    own = model_template(tokenizer)
    if own is not None:
        return ChatFormat(tokenizer, own, "the model's own chat template")
    if fallback is not None:
        return ChatFormat(tokenizer, *fallback)
    raise ValueError(f"model {model_id!r} has no chat template, so it cannot take a "
                     "conversation: pass chat_template= to lmql_nb.model(...) (a Jinja "
                     "template or a file holding one), or pass the prompt as a str")
