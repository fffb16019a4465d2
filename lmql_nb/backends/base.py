"""The interface every backend implements (a tokenizer, generation and scoring), and the
record a backend registers itself with."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Optional, Sequence

from ..core.options import GenerateOptions, ScoreOptions
from ..core.results import Generation, TokenCallback, ValueScores
from ..core.validation import Options
from ..tokenization.tokenizer import Tokenizer


class Backend(abc.ABC):
    """One model that `LLM` talks to.

    Construction is cheap (the registry has checked the options); `load` does the heavy
    work once, on a thread (never on the caller's event loop). `generate` and `score` are coroutines
    that may assume `load` has run.
    """

    #: a short name of the kind of backend, for reprs and errors
    kind: str = "backend"
    #: how many `score` calls `score_many` keeps in flight at once
    score_window: int = 8
    #: True when a call made in a continuation block (`lmql_nb.core.continuation`: a
    #: query run's holes) may get other numbers than the same call alone (llama.cpp:
    #: continuing a state rounds otherwise than reading the prompt whole); the result
    #: cache then keeps such calls' results apart from plain calls'
    continuation_changes_numbers: bool = False

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (idempotent)."""

    @abc.abstractmethod
    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer (loads it if needed; cheap compared to `load`)."""

    @property
    @abc.abstractmethod
    def context_length(self) -> Optional[int]:
        """How many tokens prompt and completion may hold together (None: unknown)."""

    @abc.abstractmethod
    async def generate(self, prompt: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        """Complete `prompt`; one `Generation` per returned sequence, best first."""

    async def encode_prompt(self, prompt: str) -> list[int]:
        """The token ids `generate` runs for `prompt` (where the model's ids are known)."""
        raise NotImplementedError(f"{self.kind} models do not expose token ids")

    async def generate_ids(self, prompt_ids: Sequence[int], prompt: str,
                           options: GenerateOptions,
                           on_token: Optional[TokenCallback] = None, *,
                           prefix_ids: Sequence[int] = (),
                           forced_ids: Sequence[int] = ()) -> list[Generation]:
        """Generate after the token ids `prompt_ids` (`prompt` is their text, for results).

        `prefix_ids` are response tokens already written: the model continues after them,
        the constraint and stop strings see them, but they are not returned.
        `forced_ids` are taken first instead of chosen (returned, with their numbers, and
        counted by `max_tokens`). So a branch is `prefix_ids=tokens[:i],
        forced_ids=[chosen]`, and teacher-forcing a text is `forced_ids=its ids`.
        """
        raise NotImplementedError(f"{self.kind} models cannot generate from token ids")

    @abc.abstractmethod
    async def score(self, prompt: str, values: list[str],
                    options: ScoreOptions) -> list[ValueScores]:
        """Per value, the log-probabilities of its tokens after `prompt`."""

    async def prompt_scores(self, prompt: str) -> tuple[list[int], list[float]]:
        """The ids of the prompt's tokens after the first and each one's log-probability
        (for `ScoringResult.seqs`)."""
        raise NotImplementedError(f"the {self.kind} backend cannot score a prompt's own "
                                  "tokens; use token_scores (the values' scores)")

    # conversations (lists of {"role", "content"} messages, checked by `LLM`) ------------

    async def generate_chat(self, messages: list[dict], options: GenerateOptions,
                            on_token: Optional[TokenCallback] = None) -> list[Generation]:
        """Continue a conversation in the assistant's turn (see `tokenization.chat`)."""
        raise ValueError(f"the {self.kind} backend cannot take a conversation (a list of "
                         "messages); pass the prompt as a str")

    async def score_chat(self, messages: list[dict], values: list[str],
                         options: ScoreOptions) -> list[ValueScores]:
        """Per value, the log-probabilities of its tokens as the assistant's reply (or,
        after an assistant's message, as its continuation)."""
        raise ValueError(f"the {self.kind} backend cannot score replies to a conversation; "
                         "score conversations with a local: or llama.cpp model")

    async def chat_prompt(self, messages: list[dict]) -> tuple[list[int], str]:
        """The token ids a conversation's generation continues, and their text."""
        raise ValueError(f"the {self.kind} backend does not expose a conversation's token ids")

    async def chat_prompt_scores(self, messages: list[dict]) -> tuple[list[int], list[float]]:
        """`prompt_scores` for a conversation's token ids."""
        raise NotImplementedError(f"the {self.kind} backend cannot score a conversation's "
                                  "own tokens")

    def chat_fingerprint(self) -> str:
        """What identifies the chat template this backend renders with (result caches)."""
        return ""

    def identity(self) -> str:
        """What identifies this model's weights (for result caches)."""
        return repr(self)


#: (model id, the name after the prefix, the checked options) -> a backend, not loaded yet
BackendFactory = Callable[[str, str, Any], Backend]
#: (model id) -> where it is served: {"base_url", "name", "api_key"}
EndpointResolver = Callable[[str], dict]


@dataclasses.dataclass(frozen=True)
class Registration:
    """A backend's id prefix, its factory, its options class and the id forms it accepts
    (for error messages and docs); see `lmql_nb.register_backend`."""

    prefix: str
    factory: BackendFactory
    options: type[Options]
    forms: tuple[tuple[str, str], ...]  # (an id form, what it names)


@dataclasses.dataclass(frozen=True)
class EndpointRegistration:
    """A name `endpoint=` accepts and how it resolves to a server."""

    name: str
    resolve: EndpointResolver
    description: str
