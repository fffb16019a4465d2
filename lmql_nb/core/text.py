"""Checks on text from users before it reaches a tokenizer or a grammar."""

from __future__ import annotations


def check_text(text: str, name: str) -> str:
    """Raise a ValueError if `text` cannot be encoded as UTF-8 (an unpaired surrogate,
    which tokenizers cannot take); return it otherwise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} has an unpaired surrogate (U+{ord(text[error.start]):04X}) "
                         f"at index {error.start}; text must be valid Unicode "
                         "(encodable as UTF-8)") from None
    return text
