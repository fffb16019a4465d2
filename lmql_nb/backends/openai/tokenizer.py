"""`RemoteTokenizer`: a `Tokenizer` over a server's `/tokenize` and `/detokenize`.

These are vLLM's endpoints (`python -m lmql_nb serve` has them too). Special tokens
(BOS, EOS) come from `/tokenizer_info`, which vLLM answers only when started with
`--enable-tokenizer-info-endpoint`; without it the tokenizer falls back to `/tokenize`
(BOS is what an empty prompt tokenises to, EOS stays unknown) and says so once in the
log. Every call goes
through the backend's one blocking client. `tokenize(text)` needs each token's text, which
the API gives one `/detokenize` call per token: those calls run concurrently (bounded by
the backend's `max_concurrency`), and a token's text is remembered, so a vocabulary piece
is asked for once per tokenizer.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Optional, Sequence

from ...errors import BackendError
from .transport import Transport

log = logging.getLogger("lmql_nb.backends.openai")


class RemoteTokenizer:
    """A `Tokenizer` over a server's `/tokenize` and `/detokenize` (vLLM's endpoints).

    Special-token ids (BOS/EOS) come from `/tokenizer_info` where the server answers it
    (else BOS from `/tokenize`, EOS None); the vocabulary size is not part of that API
    (-1).
    """

    vocab_size: int = -1

    def __init__(self, transport: Transport):
        self._transport = transport
        self._pieces: dict[int, str] = {}
        self._lock = threading.Lock()
        self._info: Optional[dict] = None
        self._specials: Optional[tuple[Optional[int], Optional[int]]] = None
        self._start: Optional[tuple[Optional[int]]] = None
        #: the start token's id (None where the server does not say) and the
        #: end-of-sequence token's (None without /tokenizer_info)
        self.bos_token_id, self.eos_token_id = self._special_ids()

    def info(self) -> dict:
        """The server's `/tokenizer_info` (the tokenizer's configuration), or {} where it
        has none (vLLM without `--enable-tokenizer-info-endpoint`), said once in the log."""
        with self._lock:
            if self._info is not None:
                return self._info
        try:
            body = self._transport.get_sync("/tokenizer_info")
            info = body if isinstance(body, dict) else {}
        except BackendError as error:
            log.warning("%s has no /tokenizer_info (%s): vLLM answers it only when started "
                        "with --enable-tokenizer-info-endpoint. lmql_nb falls back to "
                        "/tokenize: the start token is what an empty prompt tokenises to, "
                        "the end-of-sequence token is unknown.", self._transport.url,
                        str(error).rsplit("failed: ", 1)[-1])
            info = {}
        with self._lock:
            self._info = info
        return info

    def _special_ids(self) -> tuple[Optional[int], Optional[int]]:
        if self._specials is None:
            info = self.info()

            def one(token: object) -> Optional[int]:
                if isinstance(token, dict):  # an AddedToken's fields
                    token = token.get("content")
                if not isinstance(token, str) or not token:
                    return None
                ids = self._tokens(token, special=False)
                return ids[0] if len(ids) == 1 else None

            bos = one(info.get("bos_token"))
            if bos is None and not info:
                bos = self.start_token_id
            self._specials = (bos, one(info.get("eos_token")))
        return self._specials

    @property
    def start_token_id(self) -> Optional[int]:
        """The token the server puts before a prompt's own, if it adds one (asked once)."""
        if self._start is None:
            plain, prompt = self._tokens("a", special=False), self._tokens("a", special=True)
            self._start = (prompt[0] if len(prompt) == len(plain) + 1 and prompt[1:] == plain
                           else None,)
        return self._start[0]


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
