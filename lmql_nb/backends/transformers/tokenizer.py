"""The tokenizer of `local:` models: a transformers tokenizer as the engine needs it."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ...tokenization.tokenizer import prompt_or_start, start_token


class HFTokenizer:
    """A `Tokenizer` over a transformers tokenizer.

    `encode` and `tokenize` never add special tokens (`encode_prompt` does, the way the
    model expects its input); `decode` leaves special tokens out.
    """

    def __init__(self, hf_tokenizer: Any, eos_token_ids: Sequence[int] = ()):
        self.hf = hf_tokenizer
        self.vocab_size: int = len(hf_tokenizer)
        self.bos_token_id: Optional[int] = hf_tokenizer.bos_token_id
        self.eos_token_id: Optional[int] = hf_tokenizer.eos_token_id
        ids = set(eos_token_ids)
        if self.eos_token_id is not None:
            ids.add(self.eos_token_id)
        self.eos_token_ids: frozenset[int] = frozenset(ids)
        # what decoding leaves out: the named special tokens and added tokens marked special
        # (an added token not marked special, like Gemma's "<b>", is text)
        self.special_ids: frozenset[int] = frozenset(hf_tokenizer.all_special_ids) | frozenset(
            token for token, added in getattr(hf_tokenizer, "added_tokens_decoder", {}).items()
            if getattr(added, "special", False))
        self._spellings: Optional[dict[str, int]] = None

    def encode(self, text: str) -> list[int]:
        return list(self.hf.encode(text, add_special_tokens=False))

    def encode_text(self, text: str) -> list[int]:
        """Token ids of `text` as plain text: a special token's spelling ("<eos>") is
        characters, never the token (for values, constraints and chat content)."""
        return list(self.hf.encode(text, add_special_tokens=False, split_special_tokens=True))

    def special_spellings(self) -> dict[str, int]:
        """The text of each special token, and its id."""
        if self._spellings is None:
            ids = sorted(self.special_ids)
            self._spellings = dict(zip(self.convert_ids_to_tokens(ids), ids))
        return self._spellings

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids as the model expects a prompt (with BOS where the tokenizer adds it)."""
        return prompt_or_start(list(self.hf.encode(text, add_special_tokens=True)), self)

    @property
    def start_token_id(self) -> Optional[int]:
        return start_token(self)

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        return list(self.hf.tokenize(text))

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary's own strings for `ids` (e.g. "▁Paris", "Ġthe")."""
        return list(self.hf.convert_ids_to_tokens(list(ids)))

    @property
    def chat_template_source(self) -> Any:
        """The model's own chat template(s) as transformers loaded them (from
        `chat_template.jinja` or `tokenizer_config.json`; None if it has none)."""
        return getattr(self.hf, "chat_template", None)

    def config(self) -> dict[str, Any]:
        """The tokenizer's configuration as a server reports it: what its
        tokenizer_config.json holds (file paths left out), its class and chat template."""
        config = {key: value for key, value in
                  dict(getattr(self.hf, "init_kwargs", None) or {}).items()
                  if not key.endswith("_file") and key not in ("name_or_path", "vocab")}
        config["tokenizer_class"] = type(self.hf).__name__
        template = getattr(self.hf, "chat_template", None)
        if isinstance(template, str):
            config["chat_template"] = template
        return config

    def llguidance_tokenizer(self) -> Any:
        """llguidance's tokenizer for this vocabulary (seconds for a large one: cache it)."""
        import llguidance.hf

        from ...constraints.vocabulary import with_special_tokens

        eos = sorted(self.eos_token_ids)
        base = llguidance.hf.from_tokenizer(self.hf, eos_token=eos or None)
        return with_special_tokens(base, self.special_ids, eos, self.bos_token_id,
                                   self.encode_text)

    def __repr__(self) -> str:
        return f"HFTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size})"
