"""The tokenizer a GGUF file carries, through llama.cpp: no separate tokenizer needed.

It behaves like `HFTokenizer`: `encode` adds no special tokens (`encode_prompt` adds BOS
where the model wants one), special tokens written in the text are parsed as such (chat
templates rely on it), and `decode` leaves special tokens out.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any, Optional, Sequence

from ...tokenization.tokenizer import prompt_or_start, start_token


class LlamaTokenizer:
    """A `Tokenizer` over a llama.cpp model's vocabulary."""

    def __init__(self, llama_cpp: Any, model: Any):
        self._llama = llama_cpp
        self._model = model  # kept alive with the vocabulary it owns
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.vocab_size: int = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.bos_token_id: Optional[int] = _token_or_none(llama_cpp.llama_vocab_bos(self._vocab))
        self.eos_token_id: Optional[int] = _token_or_none(llama_cpp.llama_vocab_eos(self._vocab))
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        # end-of-generation tokens (EOS, end-of-turn, ...), as llama.cpp's own loop stops
        self.eos_token_ids: frozenset[int] = frozenset(
            token for token in range(self.vocab_size)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token))
        template = llama_cpp.llama_model_chat_template(model, None)
        self._chat_template: Optional[str] = template.decode("utf-8") if template else None

    def __repr__(self) -> str:
        return f"LlamaTokenizer(vocab_size={self.vocab_size})"

    def _tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        while True:
            buffer = (self._llama.llama_token * capacity)()
            count = self._llama.llama_tokenize(self._vocab, data, len(data), buffer, capacity,
                                               add_special, parse_special)
            if count >= 0:
                return list(buffer[:count])
            capacity = -count  # too small: llama.cpp says how many it needs

    def encode(self, text: str) -> list[int]:
        return self._tokenize(text, add_special=False)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of `text` as plain text: a special token's spelling is characters."""
        return self._tokenize(text, add_special=False, parse_special=False)

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids as the model expects a prompt (with BOS where the model adds it)."""
        return prompt_or_start(self._tokenize(text, add_special=True), self)

    @property
    def start_token_id(self) -> Optional[int]:
        return start_token(self)

    def decode(self, ids: Sequence[int]) -> str:
        ids = list(ids)
        if not ids:
            return ""
        tokens = (self._llama.llama_token * len(ids))(*ids)
        capacity = 8 * len(ids) + 32
        while True:
            buffer = ctypes.create_string_buffer(capacity)
            # remove_special drops BOS/EOS; unparse_special=False leaves out control tokens
            count = self._llama.llama_detokenize(self._vocab, tokens, len(ids), buffer,
                                                 capacity, True, False)
            if count >= 0:
                return buffer.raw[:count].decode("utf-8", "replace")
            capacity = -count

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary's own strings for `ids` (e.g. "▁Paris")."""
        return [self._llama.llama_vocab_get_text(self._vocab, token).decode("utf-8", "replace")
                for token in ids]

    def tokenize(self, text: str) -> list[str]:
        return self.convert_ids_to_tokens(self.encode(text))

    @property
    def chat_template_source(self) -> Optional[str]:
        """The GGUF's `tokenizer.chat_template` (None if it has none)."""
        return self._chat_template

    def config(self) -> dict[str, Any]:
        """The tokenizer's configuration as a server reports it: its class and the GGUF's
        chat template (a GGUF has no tokenizer_config.json)."""
        config: dict[str, Any] = {"tokenizer_class": type(self).__name__}
        if self._chat_template is not None:
            config["chat_template"] = self._chat_template
        return config

    def llguidance_tokenizer(self) -> Any:
        """llguidance's tokenizer for this vocabulary (about a second: cache it)."""
        import warnings

        import llguidance.llamacpp

        from ...constraints.vocabulary import with_special_tokens

        eos = sorted(self.eos_token_ids)
        with warnings.catch_warnings():  # it calls a deprecated alias once per token
            warnings.simplefilter("ignore", DeprecationWarning)
            base = llguidance.llamacpp.lltokenizer_from_vocab(self._vocab, eos_token=eos or None)
        return with_special_tokens(base, self.special_ids, eos, self.bos_token_id,
                                   self.encode_text)

    def special_spellings(self) -> dict[str, int]:
        """The text of each special token, and its id."""
        ids = sorted(self.special_ids)
        return dict(zip(self.convert_ids_to_tokens(ids), ids))

    @functools.cached_property
    def special_ids(self) -> frozenset[int]:
        """The tokens decoding leaves out (llama.cpp's control and unknown tokens; its
        user-defined tokens, such as Gemma's "<b>", are text)."""
        hidden = self._llama.LLAMA_TOKEN_ATTR_CONTROL | self._llama.LLAMA_TOKEN_ATTR_UNKNOWN
        return frozenset(token for token in range(self.vocab_size)
                         if self._llama.llama_vocab_get_attr(self._vocab, token) & hidden)


def _token_or_none(token: int) -> Optional[int]:
    return None if token < 0 else token
