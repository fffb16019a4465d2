"""The token-id protocol: what serving a model (and the engine's callers) need from it.

`Backend` (in `base`) is the text API every backend implements. A backend that also
works on the model's own token ids implements `TokenIdBackend`: a tokenizer with what
the engine and an OpenAI-compatible server need (`EngineTokenizer`), generation after
token ids, the log-probabilities of token ids, and its limits. `python -m lmql_nb
serve` serves any backend that implements it, whatever runs the model: the server calls
nothing else. The built-in transformers and llama.cpp backends implement it through the
shared engine (`backends/engine/`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Protocol, Sequence, runtime_checkable

from ..core.options import GenerateOptions
from ..core.results import Generation, TokenCallback
from ..tokenization.tokenizer import EngineTokenizer


@dataclasses.dataclass(frozen=True)
class ScoredToken:
    """A given token's log-probability, its rank (1 for the most likely) and the `k`
    most likely tokens at its position, as (token id, log-probability), best first."""

    logprob: float
    rank: Optional[int]
    top: tuple[tuple[int, float], ...]


@runtime_checkable
class TokenIdBackend(Protocol):
    """A backend driven by token ids (see the module's docstring)."""

    #: a short name of the kind of backend, for reprs and errors
    kind: str

    def load(self) -> None:
        """Load the model (idempotent; on a thread, never on an event loop)."""

    def get_tokenizer(self) -> EngineTokenizer:
        """The model's tokenizer."""

    @property
    def context_length(self) -> Optional[int]:
        """How many tokens prompt and completion may hold together (None: unknown)."""

    def check_rows(self, rows: int, what: Optional[str] = None) -> None:
        """ValueError if one call asks for more sequences (`rows`) than the model decodes
        at once; `what` describes them for the message (default "n=<rows>")."""

    async def generate_ids(self, prompt_ids: Sequence[int], prompt: str,
                           options: GenerateOptions,
                           on_token: Optional[TokenCallback] = None, *,
                           prefix_ids: Sequence[int] = (),
                           forced_ids: Sequence[int] = ()) -> list[Generation]:
        """Generate after the token ids `prompt_ids` (`prompt` is their text, for results);
        see `Backend.generate_ids` for `prefix_ids` and `forced_ids`. ValueError or
        TypeError for what the model cannot do (the server answers 400)."""

    async def score_ids(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        value_lengths: Sequence[int], use_cache: bool = True,
                        score_prefix: bool = False) -> list[list[float]]:
        """Per suffix, the log-probabilities of its last `value_lengths[i]` tokens after
        `prefix` and the suffix tokens before them (`use_cache` False: no state kept from
        earlier calls may change the numbers). With `score_prefix`, the prefix's tokens
        after its first are scored too, as the start of every suffix (`value_lengths`
        may reach into them): whole prompts, their shared part computed once."""

    async def score_ids_top(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                            top_logprobs: int, use_cache: bool = True,
                            score_prefix: bool = False) -> list[list[ScoredToken]]:
        """Per suffix, a `ScoredToken` for each of its tokens after `prefix` and the tokens
        before it (with `score_prefix`, first for each of the prefix's tokens after its
        first), with the `top_logprobs` most likely alternatives."""


def token_id_backend(backend: object, model_id: str) -> TokenIdBackend:
    """`backend` as a `TokenIdBackend`, or a ValueError that names what it lacks."""
    if isinstance(backend, TokenIdBackend):
        return backend
    wanted = [name for name in ("get_tokenizer", "context_length", "check_rows",
                                "generate_ids", "score_ids", "score_ids_top")
              if not hasattr(backend, name)]
    kind = getattr(backend, "kind", type(backend).__name__)
    raise ValueError(f"{model_id!r} is run by the {kind!r} backend, which does not work on "
                     f"token ids (it lacks {', '.join(wanted) or 'the TokenIdBackend API'}); "
                     "serve a model whose backend implements "
                     "lmql_nb.backends.protocol.TokenIdBackend, e.g. a 'local:' or "
                     "'llama.cpp:' id")
