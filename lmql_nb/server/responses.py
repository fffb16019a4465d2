"""Response bodies in OpenAI's (and vLLM's) shapes, from the engine's results."""

from __future__ import annotations

import json
import time
import uuid
from typing import Optional, Sequence

from ..results import Generation, TokenInfo

FINISH_REASONS = {"stop": "stop", "length": "length", "context": "length",
                  "cancelled": "stop"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def finish_reason(generation: Generation) -> str:
    return FINISH_REASONS.get(generation.finish_reason, generation.finish_reason)


def token_label(token_id: int, text: str, as_ids: bool) -> str:
    """How a token is named in `logprobs` (vLLM's "token_id:N" with return_tokens_as_token_ids)."""
    return f"token_id:{token_id}" if as_ids else text


def _top_dict(token: TokenInfo, k: int, as_ids: bool) -> dict:
    """The chosen token and the k best alternatives, best first (as vLLM returns them)."""
    top: dict[str, float] = {}
    for alternative in token.top[:k]:
        label = token_label(alternative.token_id, alternative.text, as_ids)
        top.setdefault(label, alternative.logprob)
    if all(a.token_id != token.token_id for a in token.top[:k]):
        top.setdefault(token_label(token.token_id, token.text, as_ids), token.logprob)
    return top


class CompletionLogprobs:
    """Builds a completion choice's `logprobs` object token by token."""

    def __init__(self, k: int, as_ids: bool, offset: int = 0):
        self.k = k
        self.as_ids = as_ids
        self.offset = offset
        self.body: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [],
                           "text_offset": []}

    def add_prompt(self, ids: Sequence[int], pieces: Sequence[str],
                   logprobs: Sequence[Optional[float]]) -> None:
        for token_id, piece, logprob in zip(ids, pieces, logprobs):
            label = token_label(token_id, piece, self.as_ids)
            self._append(label, logprob, None if logprob is None else {label: logprob}, piece)

    def add(self, token: TokenInfo) -> None:
        label = token_label(token.token_id, token.text, self.as_ids)
        self._append(label, token.logprob, _top_dict(token, self.k, self.as_ids), token.text)

    def _append(self, label: str, logprob: Optional[float], top: Optional[dict], text: str) -> None:
        self.body["tokens"].append(label)
        self.body["token_logprobs"].append(logprob)
        self.body["top_logprobs"].append(top)
        self.body["text_offset"].append(self.offset)
        self.offset += len(text)


def prompt_logprobs_entries(ids: Sequence[int], pieces: Sequence[str],
                            logprobs: Sequence[Optional[float]]) -> list:
    """vLLM's `prompt_logprobs`: per prompt token, None (the first) or {id: details}."""
    return [None if logprob is None else
            {str(token_id): {"logprob": logprob, "rank": None, "decoded_token": piece}}
            for token_id, piece, logprob in zip(ids, pieces, logprobs)]


def chat_logprob_entry(token: TokenInfo, k: int) -> dict:
    """One token of a chat choice's `logprobs.content`."""
    return {"token": token.text, "logprob": token.logprob,
            "bytes": list(token.text.encode("utf-8")),
            "top_logprobs": [{"token": a.text, "logprob": a.logprob,
                              "bytes": list(a.text.encode("utf-8"))} for a in token.top[:k]]}


def completion_body(request_id: str, model: str, choices: list[dict], usage: dict) -> dict:
    return {"id": request_id, "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage}


def chat_body(request_id: str, model: str, choices: list[dict], usage: dict) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sse(data: object) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data)}\n\n"


SSE_DONE = "data: [DONE]\n\n"
