"""The model's own numbers for a constrained generation on vLLM (before its mask).

vLLM applies a structured output (`structured_outputs`) as a mask on the logits before it
computes log-probabilities, so what it returns for a constrained generation are numbers
among the allowed tokens: 0.0 for a token the constraint forced, and -9999 for a masked
alternative. In process, `TokenInfo.logprob`, `rank` and `top` are the model's own
distribution and `constrained_logprob` / `allowed` the distribution among the allowed
tokens. Over vLLM lmql_nb reports the same: the generation request returns the token ids
(`return_token_ids`), and one more request, the prompt and the generated tokens as a
token-id prompt echoed with their log-probabilities (`max_tokens=0`, the request exact
scoring makes), gives the model's own numbers. vLLM's own values become
`constrained_logprob` and `allowed`.

Which alternatives the constraint blocked follows from the two lists: vLLM's `allowed`
list is the top-k of the allowed tokens (padded with -9999 entries when fewer are
allowed), so a token among the model's top-k that is not in it is blocked (an allowed
token ranks among the allowed at least as high as among all tokens).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

from ...errors import BackendError
from ...core.results import Alternative, TokenInfo

#: vLLM's stand-in for minus infinity in a JSON answer (a masked token)
MASKED = -9999.0


def prompt_ids(choice: Any, response: Any = None) -> list[int]:
    """The prompt's token ids as vLLM returns them with `return_token_ids` (on the
    choice, or on a chat response)."""
    ids = getattr(choice, "prompt_token_ids", None) or getattr(
        response, "prompt_token_ids", None)
    if not isinstance(ids, list):
        raise BackendError("the server did not return the prompt's token ids (vLLM's "
                           "return_token_ids)")
    return [int(t) for t in ids]


def token_ids(response: Any, choice: Any) -> tuple[list[int], list[int]]:
    """The prompt's and the generated tokens' ids from a response made with
    `return_token_ids`."""
    generated = getattr(choice, "token_ids", None)
    if not isinstance(generated, list):
        raise BackendError("the server did not return token ids (vLLM's return_token_ids), "
                           "which lmql_nb needs for the model's own log-probabilities under "
                           "a constraint")
    return prompt_ids(choice, response), [int(t) for t in generated]


def allowed(token: TokenInfo) -> tuple[Alternative, ...]:
    """vLLM's alternatives for a token of a constrained generation, without the masked
    ones: the best allowed tokens with their log-probabilities among the allowed."""
    return tuple(a for a in token.top if a.logprob > MASKED)


def merge(served: Sequence[TokenInfo], ids: Sequence[int], echoed: Any, start: int,
          k: int) -> tuple[TokenInfo, ...]:
    """`served` (vLLM's post-mask tokens, with `ids`) with the model's own numbers from
    `echoed` (the logprobs of an echo of the prompt and these tokens; the first of them
    at position `start`), as an in-process model reports them."""
    scores = list(echoed.token_logprobs or []) if echoed is not None else []
    tops = list(echoed.top_logprobs or []) if echoed is not None else []
    if len(scores) < start + len(served):
        raise BackendError(f"the server echoed {len(scores)} log-probabilities for a "
                           f"{start + len(served)}-token prompt")
    result = []
    for i, (token, token_id) in enumerate(zip(served, ids)):
        own = scores[start + i]
        if own is None:
            raise BackendError("the server echoed no log-probability for a generated token")
        best = allowed(token)
        top: tuple[Alternative, ...] = ()
        rank: Optional[int] = None
        if k:
            entries = sorted(((str(t), float(v)) for t, v in (tops[start + i] or {}).items()),
                             key=lambda e: -e[1])[:k]
            permitted = {a.text for a in best} | {token.text}
            top = tuple(Alternative(-1, text, value, blocked=text not in permitted)
                        for text, value in entries)
            if any(a.text == token.text for a in top):
                rank = 1 + sum(1 for a in top if a.logprob > float(own))
        result.append(dataclasses.replace(
            token, token_id=int(token_id), logprob=float(own), rank=rank, top=top,
            constrained_logprob=token.logprob, allowed=best[:k]))
    return tuple(result)
