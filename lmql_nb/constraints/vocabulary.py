"""llguidance's view of a vocabulary, with exactly the tokenizer's own special tokens.

llguidance marks a token as special (a token no text can spell: a regex never matches
it) by the rules of its importers, which are wider than the tokenizers': every added
token of a Hugging Face tokenizer, and every llama.cpp user-defined token written like
`<...>`. Gemma's HTML-tag tokens (`<b>`, `</li>`, `<td>`, ...) are such tokens, yet its
tokenizer decodes them as text; llguidance would block them under every constraint,
even `.*`, and fail when a constraint's text can only be spelled with them. So the
vocabulary is rebuilt here: every token keeps the bytes llguidance decoded for it, and
only the tokens the tokenizer itself treats as special (left out when decoding) keep the
special marker.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Optional, Sequence, cast

SPECIAL_MARKER = b"\xff"  # llguidance's prefix for a special token's bytes


class Vocabulary:
    """What `llguidance.LLTokenizer` reads from a tokenizer object (its TokenizerWrapper
    protocol): the tokens' bytes, the special ids, and a text tokenizer."""

    def __init__(self, tokens: list[bytes], special_ids: Collection[int],
                 eos_token_id: int, bos_token_id: Optional[int],
                 encode: Callable[[str], list[int]],
                 fallback: Optional[Callable[[str], list[int]]] = None):
        self.tokens = tokens
        self._fallback = fallback
        self.special_token_ids = sorted(special_ids)
        self.eos_token_id = eos_token_id
        self.bos_token_id = bos_token_id
        self._encode = encode
        self.is_tokenizer_wrapper = True  # what llguidance checks for

    def __call__(self, text: Any) -> list[int]:
        if not isinstance(text, str):  # llguidance then passes str
            raise TypeError("text only")
        ids = self._encode(text)
        # llguidance trusts these ids to spell `text` exactly; a tokenizer that adds a
        # space in front ("▁e" for "e") does not, and then the greedy spelling is used
        if self._fallback is not None and b"".join(
                self.tokens[i] if i < len(self.tokens) else b"\0" for i in ids) \
                != text.encode("utf-8"):
            return self._fallback(text)
        return ids


def with_special_tokens(base: Any, special_ids: Collection[int], eos: Sequence[int],
                        bos: Optional[int], encode: Callable[[str], list[int]],
                        vocab_size: Optional[int] = None) -> Any:
    """An `LLTokenizer` like `base` whose special tokens are exactly `special_ids` (and
    the end-of-sequence ids `eos`); `base` itself when it already agrees."""
    import llguidance

    size = base.vocab_size if vocab_size is None else max(vocab_size, base.vocab_size)
    special = set(special_ids) | set(eos)
    tokens: list[bytes] = []
    changed = False
    for token in range(size):
        data = base.decode_bytes([token]) if token < base.vocab_size else b""
        marked = token < base.vocab_size and base.is_special_token(token)
        if token in special:
            tokens.append(SPECIAL_MARKER + data)
            changed |= not marked
        else:
            tokens.append(data)
            changed |= marked
    if not changed:
        return base
    vocabulary = Vocabulary(tokens, special, min(eos) if eos else base.eos_token, bos, encode,
                            base.greedy_tokenize)
    # llguidance checks the protocol (`is_tokenizer_wrapper`), not the class
    return llguidance.LLTokenizer(cast(Any, vocabulary), eos_token=list(eos) or None)
