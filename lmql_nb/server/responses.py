"""Response bodies and stream chunks in OpenAI's (and vLLM's) shapes, from engine results.

Log-probabilities follow vLLM's `serving_completion.py` and `serving_chat.py`: one
`Position` per token (prompt tokens when echoed, generated tokens, and the
end-of-sequence token that ended a row, which is not in the text but is a generated
token); a position's `top_logprobs` holds the token itself first, then the k most likely
tokens (so k or k+1 entries; where two tokens read alike, "9" and the byte token
<0x39>, the label keeps the higher log-probability, so `max(top.values())` is the best,
as lm-eval's is_greedy assumes); `text_offset` advances by the length of each token's
label; log-probabilities below -9999 (minus infinity) are reported as -9999.0.

One extension of this server's own, `token_details` (asked for with the request field
of that name): each generated position also carries the whole `TokenInfo` as in-process
results hold it (its id, rank, entropy, top alternatives with ids and `blocked` flags,
and under a constraint `constrained_logprob` and `allowed`), so that lmql_nb's client
gets the numbers and flags a format of labels and log-probabilities cannot say.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from typing import Callable, Optional, Sequence

from ..core.results import Generation, TokenInfo

FINISH_REASONS = {"stop": "stop", "length": "length", "context": "length",
                  "cancelled": "stop"}
LOWEST_LOGPROB = -9999.0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def finish_reason(generation: Generation) -> str:
    return FINISH_REASONS.get(generation.finish_reason, generation.finish_reason)


@dataclasses.dataclass(frozen=True)
class Position:
    """One token in a `logprobs` answer: its id and text, its log-probability (None for
    a prompt's first token) and the most likely tokens there as (id, text, logprob)."""

    token_id: int
    text: str
    logprob: Optional[float]
    top: tuple[tuple[int, str, float], ...] = ()
    rank: Optional[int] = None
    #: a generated token's `TokenInfo` as JSON-ready data (the `token_details` extension)
    details: Optional[dict] = None


def token_position(token: TokenInfo) -> Position:
    """A generated token as it reads in the text."""
    return Position(token.token_id, token.text, token.logprob,
                    tuple((a.token_id, a.text, a.logprob) for a in token.top), token.rank,
                    token_details(token))


def token_details(token: TokenInfo) -> dict:
    """`token` as `TokenInfo.from_data` reads it, with JSON's numbers only: minus
    infinity as -9999.0 (as the log-probabilities), NaN as null."""
    def finite(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None if math.isnan(value) else _clamp(value)
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(item) for item in value]
        return value

    return finite(dataclasses.asdict(token))  # type: ignore[return-value]


def end_position(token: TokenInfo, special_text: Callable[[int], str]) -> Position:
    """The end-of-sequence token that ended a row, named by its text ("</s>")."""
    return dataclasses.replace(token_position(token), text=special_text(token.token_id))


def generated_positions(generation: Generation,
                        special_text: Callable[[int], str]) -> list[Position]:
    """A generated row's tokens, and the end-of-sequence token that ended it."""
    positions = [token_position(t) for t in generation.tokens]
    if generation.end_token is not None:
        positions.append(end_position(generation.end_token, special_text))
    return positions


def generated_count(generation: Generation) -> int:
    """Generated tokens as vLLM counts them in usage: the end-of-sequence token too."""
    return len(generation.tokens) + (generation.end_token is not None)


def _clamp(logprob: float) -> float:
    return max(logprob, LOWEST_LOGPROB)


class CompletionLogprobs:
    """A completion choice's `logprobs` object, built position by position."""

    def __init__(self, k: int, as_ids: bool, offset: int = 0, details: bool = False):
        self.k = k
        self.as_ids = as_ids
        self.offset = offset
        self.body: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [],
                           "text_offset": []}
        if details:  # one entry per token: a generated token's TokenInfo, else null
            self.body["token_details"] = []

    def _label(self, token_id: int, text: str) -> str:
        """vLLM's "token_id:N" with return_tokens_as_token_ids, else the text."""
        return f"token_id:{token_id}" if self.as_ids else text

    def add(self, positions: Sequence[Position]) -> "CompletionLogprobs":
        for position in positions:
            label = self._label(position.token_id, position.text)
            top: Optional[dict] = None
            if position.logprob is not None:
                top = {label: _clamp(position.logprob)}
                for token_id, text, logprob in position.top[:self.k]:
                    key = self._label(token_id, text)
                    if token_id != position.token_id and top.get(key, LOWEST_LOGPROB) < logprob:
                        # two tokens may read alike ("9" and the byte <0x39>): the label
                        # keeps the higher log-probability, so max(values) is the best
                        top[key] = _clamp(logprob)
            self.body["tokens"].append(label)
            self.body["token_logprobs"].append(
                None if position.logprob is None else _clamp(position.logprob))
            self.body["top_logprobs"].append(top)
            self.body["text_offset"].append(self.offset)
            if "token_details" in self.body:
                self.body["token_details"].append(position.details)
            self.offset += len(label)
        return self


def prompt_logprobs_entries(positions: Sequence[Position]) -> list:
    """vLLM's `prompt_logprobs`: per prompt token None (the first) or
    {token id: {logprob, rank, decoded_token}}, the token first, then the top k."""
    entries: list = []
    for position in positions:
        if position.logprob is None:
            entries.append(None)
            continue
        entry = {str(position.token_id): {"logprob": _clamp(position.logprob),
                                          "rank": position.rank,
                                          "decoded_token": position.text}}
        for rank, (token_id, text, logprob) in enumerate(position.top, 1):
            entry.setdefault(str(token_id), {"logprob": _clamp(logprob), "rank": rank,
                                             "decoded_token": text})
        entries.append(entry)
    return entries


def chat_logprob_entry(position: Position, k: int, details: bool = False) -> dict:
    """One token of a chat choice's `logprobs.content` (with `details`, its
    `token_details` too)."""
    entry = {"token": position.text, "logprob": _clamp(position.logprob or 0.0),
             "bytes": list(position.text.encode("utf-8")),
             "top_logprobs": [{"token": text, "logprob": _clamp(logprob),
                               "bytes": list(text.encode("utf-8"))}
                              for _, text, logprob in position.top[:k]]}
    if details:
        entry["token_details"] = position.details
    return entry


def chat_logprobs(positions: Sequence[Position], k: Optional[int],
                  details: bool = False) -> Optional[dict]:
    return None if k is None else {
        "content": [chat_logprob_entry(p, k, details) for p in positions]}


# whole responses --------------------------------------------------------------------


def completion_body(request_id: str, model: str, choices: list[dict], usage: dict) -> dict:
    return {"id": request_id, "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage}


def completion_choice(index: int, text: str, generation: Generation,
                      logprobs: Optional[dict]) -> dict:
    return {"index": index, "text": text, "logprobs": logprobs,
            "finish_reason": finish_reason(generation), "stop_reason": None}


def chat_body(request_id: str, model: str, choices: list[dict], usage: dict) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage}


def chat_choice(index: int, generation: Generation, logprobs: Optional[dict]) -> dict:
    return {"index": index, "message": {"role": "assistant", "content": generation.text},
            "logprobs": logprobs, "finish_reason": finish_reason(generation),
            "stop_reason": None}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


# stream chunks ----------------------------------------------------------------------


def completion_chunk(request_id: str, model: str, index: int, text: str,
                     logprobs: Optional[dict], finish: Optional[str]) -> dict:
    return {"id": request_id, "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [{"index": index, "text": text, "logprobs": logprobs,
                                         "finish_reason": finish, "stop_reason": None}]}


def chat_chunk(request_id: str, model: str, index: int, delta: dict,
               logprobs: Optional[dict], finish: Optional[str]) -> dict:
    return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                         "finish_reason": finish}]}


def chat_delta(text: str, final: bool) -> dict:
    """A chat chunk's delta: the text, or nothing in a final chunk that adds none."""
    return {"content": text} if text or not final else {}


def usage_chunk(request_id: str, model: str, kind: str, usage_body: dict) -> dict:
    return {"id": request_id, "object": kind, "created": int(time.time()), "model": model,
            "choices": [], "usage": usage_body}


def error_event(error_message: str, status: int = 500, kind: str = "server_error") -> dict:
    return {"error": {"message": error_message, "type": kind, "code": status}}


def sse(data: object) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


SSE_DONE = "data: [DONE]\n\n"
