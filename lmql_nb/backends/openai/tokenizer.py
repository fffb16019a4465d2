"""`RemoteTokenizer`: a `Tokenizer` over a server's `/tokenize` and `/detokenize`.

These are vLLM's endpoints (`python -m lmql_nb serve` has them too). Every call goes
through the backend's one blocking client. `tokenize(text)` needs each token's text, which
the API gives one `/detokenize` call per token: those calls run concurrently (bounded by
the backend's `max_concurrency`), and a token's text is remembered, so a vocabulary piece
is asked for once per tokenizer.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Optional, Sequence

from .transport import Transport


class RemoteTokenizer:
    """A `Tokenizer` over a server's `/tokenize` and `/detokenize` (vLLM's endpoints).

    Special-token ids (BOS/EOS) and the vocabulary size are not part of that API and are
    None / -1.
    """

    vocab_size: int = -1
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    start_token_id: Optional[int] = None

    def __init__(self, transport: Transport):
        self._transport = transport
        self._pieces: dict[int, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteTokenizer({self._transport.model!r} at {self._transport.url!r})"

    def _tokens(self, text: str, special: bool) -> list[int]:
        body = self._transport.post_sync("/tokenize", {"prompt": text,
                                                       "add_special_tokens": special})
        return [int(t) for t in body["tokens"]]

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added)."""
        return self._tokens(text, special=False)

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids as the model expects a prompt (with BOS where the server adds it)."""
        return self._tokens(text, special=True)

    def encode_text(self, text: str) -> list[int]:
        raise NotImplementedError("a server's /tokenize reads special-token spellings as "
                                  "the tokens; it cannot encode them as plain text")

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`."""
        return str(self._transport.post_sync("/detokenize", {"tokens": list(ids)})["prompt"])

    def tokenize(self, text: str) -> list[str]:
        """The text of each of `text`'s tokens."""
        ids = self.encode(text)
        with self._lock:
            missing = sorted({i for i in ids if i not in self._pieces})
        if missing:
            workers = max(1, min(len(missing), self._transport.max_concurrency))
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                pieces = dict(zip(missing, pool.map(lambda i: self.decode([i]), missing)))
            with self._lock:
                self._pieces.update(pieces)
        with self._lock:
            return [self._pieces[i] for i in ids]
