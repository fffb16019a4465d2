"""Responses into results: completions and chat choices, streams, and scores.

Per-token log-probabilities and top-k alternatives become `TokenInfo`s where the server
gives them. Token ids are not part of OpenAI's format: they are -1 (UNKNOWN_TOKEN_ID)
unless the server returns them as "token_id:N" labels (vLLM's
`return_tokens_as_token_ids`); entropy is None. `lmql_nb serve` sends each generated
token whole (its `token_details` extension: ids, rank, entropy, `blocked` alternatives,
the constrained numbers), and the token is then that, with the text as it reads here.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Optional, Sequence

from ...errors import BackendError, ScoringNotSupported
from ...core.results import Alternative, Generation, TokenCallback, TokenInfo, ValueScores

UNKNOWN_TOKEN_ID = -1


def generation(choice: Any, prompt: str, k: int, chat: bool,
               stops: Sequence[str] = ()) -> Generation:
    """One choice of a (non-streamed) response as a `Generation`."""
    if chat:
        text = choice.message.content or ""
        entries = (choice.logprobs.content or []) if choice.logprobs else []
        tokens = tuple(chat_token(entry, k) for entry in entries)
    else:
        text = choice.text or ""
        tokens = completion_tokens(choice.logprobs, k)
    ids = getattr(choice, "token_ids", None)  # vLLM's return_token_ids
    if isinstance(ids, list) and len(ids) == len(tokens):
        tokens = tuple(dataclasses.replace(t, token_id=int(i)) if t.token_id < 0 else t
                       for t, i in zip(tokens, ids))
    reason = finish_reason(choice.finish_reason)
    tokens, end = split_end(tokens, text, reason, stops)
    return Generation(text, tokens, reason, prompt, end_token=end)


def split_end(tokens: Sequence[TokenInfo], text: str, reason: str,
              stops: Sequence[str] = ()) -> tuple[tuple[TokenInfo, ...], Optional[TokenInfo]]:
    """The tokens, and apart the end-of-sequence token that ended the text, if any.

    vLLM and `lmql_nb serve` list a generated end-of-sequence token in the logprobs but
    not in the text (as `Generation.end_token` holds it in process). It is the last token
    of a stopped sequence whose other tokens spell the whole text, unless one of the
    request's stop strings ends within it (then the stop explains what the text lacks).
    """
    tokens = tuple(tokens)
    if reason != "stop" or not tokens or not tokens[-1].text:
        return tokens, None
    *body, last = tokens
    if "".join(t.text for t in body) != text:
        return tokens, None
    if any(stop and stop in text + last.text and stop not in text for stop in stops):
        return tokens, None
    return tuple(body), last


async def read_stream(stream: Any, prompt: str, k: int, chat: bool, on_token: TokenCallback,
                      broke_off: Callable[[BaseException, int], BackendError],
                      where: str, stops: Sequence[str] = ()) -> list[Generation]:
    """The generations of a streamed response, calling `on_token` as tokens arrive.

    An error of `on_token` reaches the caller unchanged; a broken stream becomes
    `broke_off(error, tokens received)`; `where` names the server in errors.
    """
    texts: dict[int, list[str]] = {}
    tokens: dict[int, list[TokenInfo]] = {}
    reasons: dict[int, str] = {}
    ends: dict[int, Optional[TokenInfo]] = {}
    in_callback = False
    try:
        async for chunk in stream:
            for choice in chunk.choices:
                index = choice.index
                texts.setdefault(index, [])
                tokens.setdefault(index, [])
                if chat:
                    piece = choice.delta.content if choice.delta else None
                    new = [chat_token(e, k) for e in
                           ((choice.logprobs.content or []) if choice.logprobs else [])]
                else:
                    piece = choice.text
                    new = list(completion_tokens(choice.logprobs, k))
                texts[index].append(piece or "")
                if choice.finish_reason:  # the last chunk may carry the end-of-sequence token
                    reason = finish_reason(choice.finish_reason)
                    kept, ends[index] = split_end(tokens[index] + new, "".join(texts[index]),
                                                  reason, stops)
                    new = new[:len(kept) - len(tokens[index])]
                for token in new:
                    tokens[index].append(token)
                    in_callback = True
                    on_token(index, token)
                    in_callback = False
                if choice.finish_reason:
                    reasons[index] = finish_reason(choice.finish_reason)
    except Exception as error:  # the connection broke (or the server sent nonsense)
        if in_callback:  # the caller's on_token failed: its error, unchanged
            raise
        raise broke_off(error, sum(len(t) for t in tokens.values())) from None
    finally:
        await stream.close()
    if not reasons or len(reasons) < len(texts):
        raise BackendError(f"the stream from {where} ended before every sequence finished")
    return [Generation("".join(texts[i]), tuple(tokens[i]), reasons[i], prompt,
                       end_token=ends.get(i)) for i in sorted(texts)]


def echoed_scores(choices: Sequence[Any], splits: Sequence[tuple[list[int], int]],
                  where: str, what_scores: str) -> list[ValueScores]:
    """Per (joint prompt ids, value token count), the value's tokens and log-probabilities
    from the choices (in order) of an `echo=True, max_tokens=0` completion of the joint
    prompts."""
    if len(choices) != len(splits):
        raise BackendError(f"{where} answered {len(choices)} choices for {len(splits)} "
                           "prompts")
    results = []
    for (joint, count), choice in zip(splits, choices):
        logprobs = choice.logprobs
        scores = list(logprobs.token_logprobs or []) if logprobs else []
        if len(scores) < len(joint):
            raise ScoringNotSupported(
                f"{where} returned {len(scores)} prompt log-probabilities for a "
                f"{len(joint)}-token prompt: it does not echo the prompt's "
                "log-probabilities, so it cannot score exactly. " + what_scores)
        # a server may append generated tokens after the prompt's: slice at the prompt's end
        texts = list(logprobs.tokens[len(joint) - count:len(joint)]) \
            if logprobs.tokens else [""] * count
        value_scores = scores[len(joint) - count:len(joint)]
        if any(s is None for s in value_scores):
            raise BackendError(f"{where} returned no log-probability for some value tokens")
        results.append(ValueScores(joint[len(joint) - count:], texts,
                                   [float(s) for s in value_scores]))
    return results


def first_token_candidates(response: Any, chat: bool) -> dict[str, float]:
    """The first generated token's top alternatives: {token text: log-probability}."""
    if chat:
        logprobs = response.choices[0].logprobs
        entries = logprobs.content if logprobs else []
        return {a.token: a.logprob for a in (entries[0].top_logprobs if entries else [])}
    logprobs = response.choices[0].logprobs
    return dict((logprobs.top_logprobs or [{}])[0] or {}) if logprobs else {}


def approximate_scores(values: Sequence[str], candidates: dict[str, float],
                       k: int) -> list[ValueScores]:
    """Each value's score: the log-probability of the longest of the first token's
    top-k candidates that begins the value (an upper bound where none does); labelled
    "≈..." in the token texts."""
    floor = min(candidates.values())
    results = []
    for value in values:
        matches = [t for t in candidates if t and value.startswith(t)]
        if matches:
            token = max(matches, key=len)
            results.append(ValueScores([UNKNOWN_TOKEN_ID], [f"≈{token}"],
                                       [float(candidates[token])]))
        else:  # not among the candidates: its log-probability is at most the lowest
            results.append(ValueScores([UNKNOWN_TOKEN_ID], [f"≈{value}(not in top {k})"],
                                       [float(floor)]))
    return results


def finish_reason(reason: Optional[str]) -> str:
    return reason or "stop"


def _rank(logprob: float, alternatives: Sequence[Alternative]) -> Optional[int]:
    """The chosen token's rank, when it is among the alternatives (else unknown)."""
    if any(a.logprob == logprob for a in alternatives):
        return 1 + sum(1 for a in alternatives if a.logprob > logprob)
    return None


_TOKEN_ID = re.compile(r"token_id:(\d+)")


def _token_id(label: str) -> int:
    match = _TOKEN_ID.fullmatch(label)
    return int(match.group(1)) if match else UNKNOWN_TOKEN_ID


def completion_tokens(logprobs: Any, k: int) -> tuple[TokenInfo, ...]:
    """`TokenInfo`s from a completion choice's `logprobs` (tokens, token_logprobs, top)."""
    if logprobs is None or not logprobs.tokens:
        return ()
    tops = logprobs.top_logprobs or [None] * len(logprobs.tokens)
    details = getattr(logprobs, "token_details", None) or [None] * len(logprobs.tokens)
    result = []
    for label, logprob, top, detail in zip(logprobs.tokens, logprobs.token_logprobs, tops,
                                           details):
        alternatives = tuple(sorted((Alternative(_token_id(t), t, float(v))
                                     for t, v in (top or {}).items()),
                                    key=lambda a: -a.logprob))[:k]
        value = float(logprob) if logprob is not None else float("nan")
        result.append(_detailed(detail, label) or TokenInfo(
            _token_id(label), label, value, _rank(value, alternatives) if k else None, None,
            alternatives))
    return tuple(result)


def chat_token(entry: Any, k: int) -> TokenInfo:
    """A `TokenInfo` from one entry of a chat choice's `logprobs.content`."""
    alternatives = tuple(Alternative(UNKNOWN_TOKEN_ID, a.token, float(a.logprob))
                         for a in (entry.top_logprobs or [])[:k])
    logprob = float(entry.logprob)
    return _detailed(getattr(entry, "token_details", None), entry.token) or TokenInfo(
        UNKNOWN_TOKEN_ID, entry.token, logprob, _rank(logprob, alternatives) if k else None,
        None, alternatives)


def _detailed(detail: Any, label: str) -> Optional[TokenInfo]:
    """The token `lmql_nb serve` sent whole (`token_details`), its text the label's (a
    "token_id:N" label is read back into text later, as for any token); None without."""
    if not isinstance(detail, dict):
        return None
    try:
        token = TokenInfo.from_data(detail)
    except TypeError as error:
        raise BackendError(f"the server sent token_details lmql_nb cannot read: {error}") from None
    return dataclasses.replace(token, text=label)


def with_texts(tokens: Sequence[TokenInfo], tokenizer: Any,
               context_ids: Sequence[int]) -> tuple[TokenInfo, ...]:
    """Tokens named by id ("token_id:N") with their texts in context (after
    `context_ids`), alternatives too, through `tokenizer` (the server's /detokenize)."""
    import dataclasses

    from ...tokenization.tokenizer import IncrementalDecoder

    decoder = IncrementalDecoder(tokenizer, context_ids)
    result = []
    for token in tokens:
        top = tuple(dataclasses.replace(a, text=decoder.peek(a.token_id)) for a in token.top
                    if a.token_id >= 0)
        result.append(dataclasses.replace(token, text=decoder.add(token.token_id), top=top))
    return tuple(result)
