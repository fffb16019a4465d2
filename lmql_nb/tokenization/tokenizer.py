"""The tokenizer interface `LLM.get_tokenizer()` returns, and incremental detokenisation."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Protocol, Sequence

REPLACEMENT_CHAR = "\ufffd"


class Tokenizer(Protocol):
    """What every backend's tokenizer offers."""

    vocab_size: int
    bos_token_id: Optional[int]
    eos_token_id: Optional[int]

    def encode(self, text: str) -> list[int]: ...

    def encode_text(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def tokenize(self, text: str) -> list[str]: ...

    def encode_prompt(self, text: str) -> list[int]: ...

    @property
    def start_token_id(self) -> Optional[int]: ...


class EngineTokenizer(Tokenizer, Protocol):
    """What the engine and the server need on top: end-of-sequence ids, the ids decoding
    leaves out, token strings, chat templates, llguidance's view of the vocabulary (for
    constraints) and the configuration a server reports."""

    eos_token_ids: frozenset[int]

    @property
    def special_ids(self) -> frozenset[int]: ...

    def config(self) -> dict[str, Any]: ...

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]: ...

    def special_spellings(self) -> dict[str, int]: ...

    @property
    def chat_template_source(self) -> Any: ...

    def llguidance_tokenizer(self) -> Any: ...


def common_prefix_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items `a` and `b` share."""
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def split_continuation(tokenizer: Tokenizer, prompt: str,
                       value: str) -> tuple[list[int], list[int]]:
    """Tokenise prompt + value jointly; return (context ids, value ids).

    The value's tokens are those of the joint tokenisation that differ from the prompt's
    own tokenisation: a token straddling the boundary belongs to the value, so
    "... is " + "Paris" and "... is" + " Paris" score the same tokens.
    """
    joint = tokenizer.encode_prompt(prompt + value)
    own = tokenizer.encode_prompt(prompt)
    shared = common_prefix_length(own, joint)
    special = getattr(tokenizer, "special_ids", None)
    if special and any(token in special for token in joint[shared:]):
        # the value spells a special token ("<eos>"): a value is text, so it is read as
        # text, after the prompt's own tokens (see `special_token_policy`)
        joint, shared = own + tokenizer.encode_text(value), len(own)
    if shared == 0:  # an empty prompt and a tokenizer that adds no BOS
        if tokenizer.start_token_id is None:
            raise ValueError(f"cannot score {value!r} after an empty prompt: this tokenizer "
                             "has no start token to condition on; pass a non-empty prompt")
        return [tokenizer.start_token_id], joint
    return joint[:shared], joint[shared:]


SPECIAL_TOKEN_POLICY = """\
Text that spells a special token ("<eos>", "<start_of_turn>") is read as that token only
in a prompt (the `prompt` of generate and score, a /v1/completions prompt, /tokenize):
as the tokenizer reads it, so hand-written chat turns work. Everywhere else it is text:
score values, constraint strings (choices, stops, regexes, where) and chat message
content are the characters they spell, so a value "<eos>" is scored as five characters
and a chat message cannot end its turn or open another one. A chat template's own
markup stays special."""


def encode_chat(tokenizer: "EngineTokenizer", messages: list[dict],
                render: Callable[[list[dict]], str]) -> list[int]:
    """The token ids of a conversation that `render` writes as text (a chat template,
    see `lmql_nb.tokenization.chat`), the messages' content read as text
    (`SPECIAL_TOKEN_POLICY`): a content that spells a turn marker gets the marker's
    characters, never the marker.

    The template's output is split at the special tokens the template itself wrote
    (where the tokenizer splits it too) and each piece is read as text.
    """
    spellings: dict[str, int] = tokenizer.special_spellings()
    text = render(messages)
    contents = [str(m.get("content", "")) for m in messages]
    found = [s for s in spellings if any(s in content for content in contents)]
    if not found:
        return tokenizer.encode(text)
    # each spelling in a content becomes a private-use character the template passes on
    marks = {spelling: chr(0xF0000 + i) for i, spelling in enumerate(found)}
    unmark = {mark: spelling for spelling, mark in marks.items()}

    def escape(content: str) -> str:
        for spelling, mark in marks.items():
            content = content.replace(spelling, mark)
        return content

    escaped = [dict(m, content=escape(content)) for m, content in zip(messages, contents)]
    text = render(escaped)
    pattern = re.compile("|".join(re.escape(s) for s in sorted(spellings, key=len,
                                                                reverse=True)))
    restore = re.compile("|".join(map(re.escape, unmark)))
    ids: list[int] = []
    position = 0
    for match in [*pattern.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        piece = restore.sub(lambda m: unmark[m.group()], text[position:end])
        if piece:
            ids += tokenizer.encode_text(piece)
        if match is not None:
            ids.append(spellings[match.group()])
            position = match.end()
    return ids


def start_token(tokenizer: Any) -> Optional[int]:
    """The token that starts a text: BOS, or EOS where there is no BOS (GPT-2 style)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def prompt_or_start(ids: list[int], tokenizer: Tokenizer) -> list[int]:
    """A prompt's ids, or the start token alone for an empty prompt (generation needs a
    context); ValueError if the tokenizer has none."""
    if ids:
        return ids
    if tokenizer.start_token_id is None:
        raise ValueError("the prompt is empty and this tokenizer has no BOS or EOS token to "
                         "start from; pass a non-empty prompt")
    return [tokenizer.start_token_id]


def drop_incomplete_tail(text: str) -> str:
    """Remove replacement characters that a cut multi-byte character left at the end."""
    return text.rstrip(REPLACEMENT_CHAR)


class IncrementalDecoder:
    """Turns a growing list of token ids into text pieces, one per token.

    Each piece is what the token adds to the decoded text *in context* (so a
    SentencePiece "▁Paris" after other text reads " Paris"). A token that ends inside a
    multi-byte character adds "" until the token that completes the character arrives.
    Decoding looks back only a few tokens, so the cost per token stays constant.
    """

    CONTEXT = 6
    MAX_CHARACTER_TOKENS = 4  # a UTF-8 character spans at most 4 byte tokens

    def __init__(self, tokenizer: Tokenizer, context_ids: Sequence[int] = ()):
        self.tokenizer = tokenizer
        self.ids: list[int] = list(context_ids)[-(self.CONTEXT + self.MAX_CHARACTER_TOKENS):]
        self.prefix_offset = len(self.ids)  # where the text already emitted ends, in ids
        self.context_start = self._window_start()
        self._origin = (self.context_start, self.prefix_offset)

    def _window_start(self) -> int:
        """Where decoding starts: a few tokens back, but never inside a character (a
        window that starts with a continuation byte decodes to replacement characters)."""
        start = max(0, self.prefix_offset - self.CONTEXT)
        lowest = max(0, start - self.MAX_CHARACTER_TOKENS)
        while start > lowest and self._text(self.ids[start:self.prefix_offset]).startswith(
                REPLACEMENT_CHAR):
            start -= 1
        return start

    def _text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def peek(self, token_id: int) -> str:
        """The piece `token_id` would add next, without adding it (for alternatives):
        the same text `add` would return."""
        window = self.ids[self.context_start:]
        emitted = self._text(self.ids[self.context_start:self.prefix_offset])
        full = self._text(window + [token_id])
        return "" if full.endswith(REPLACEMENT_CHAR) else full[common_prefix_length(emitted, full):]

    def add(self, token_id: int) -> str:
        """Append `token_id` and return the text it completes."""
        window_start = self.context_start
        emitted = self._text(self.ids[window_start:self.prefix_offset])
        self.ids.append(token_id)
        full = self._text(self.ids[window_start:])
        if full.endswith(REPLACEMENT_CHAR):
            return ""  # wait for the rest of the character
        # invalid bytes can turn text already emitted into replacement characters; the
        # stream cannot take text back, so it goes on from where the texts part
        piece = full[common_prefix_length(emitted, full):]
        self.prefix_offset = len(self.ids)
        self.context_start = self._window_start()
        return piece

    def text(self) -> str:
        """All text the added tokens make, decoded at once in context.

        Equal to the joined pieces, except where the model produced invalid UTF-8: then
        this is what decoding the whole sequence gives. An incomplete character at the
        end is left out.
        """
        start, origin = self._origin
        before = self._text(self.ids[start:origin])
        full = self._text(self.ids[start:])
        if not full.startswith(before):
            full, before = self._text(self.ids[origin:]), ""
        return drop_incomplete_tail(full[len(before):])


def token_pieces(tokenizer: Tokenizer, context_ids: Sequence[int], ids: Sequence[int]) -> list[str]:
    """The text each of `ids` adds after `context_ids` (see `IncrementalDecoder`)."""
    decoder = IncrementalDecoder(tokenizer, context_ids)
    return [decoder.add(token_id) for token_id in ids]
