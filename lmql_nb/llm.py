"""`LLM`: a model, with `generate` and `score` as coroutines and `_sync` twins."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Optional, Union

from . import aio
from .backends.base import Backend
from .options import (GenerateOptions, check_prompt, check_values, parse_generate_options,
                      parse_score_options)
from .result_cache import make_key
from .result_cache import results as result_cache
from .results import Generation, TokenCallback
from .serialization import (generations_from_data, generations_to_data, scores_from_data,
                            scores_to_data)
from .scoring import ScoringResult
from .tokenizer import Tokenizer

GenerateResult = Union[str, list[str], Generation, list[Generation]]


class LLM:
    """A language model: `lmql_nb.model(id)` returns one.

    The model loads on first use, on a thread, so the caller's event loop stays free.
    Concurrent calls are batched by the backend (into shared forward passes where that
    leaves each call's numbers as they are alone).
    """

    def __init__(self, model_id: str, backend: Backend):
        self.model_identifier = model_id
        self.backend = backend
        self._load_lock = threading.Lock()
        self._loading: Optional[concurrent.futures.Future] = None
        self._identity_value: Optional[str] = None

    def __repr__(self) -> str:
        return f"lmql_nb.LLM({self.model_identifier!r})"

    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer: `encode`, `decode`, `tokenize`, `vocab_size`, BOS/EOS ids."""
        return self.backend.get_tokenizer()

    async def _identity(self) -> str:
        """The backend's identity for result caches (computed once, off the event loop:
        it may have to convert the model first)."""
        if self._identity_value is None:
            self._identity_value = await aio.wait(aio.run_in_thread(self.backend.identity))
        return self._identity_value

    async def _ready(self) -> Backend:
        with self._load_lock:
            if self._loading is None or (self._loading.done() and self._loading.exception()):
                self._loading = aio.run_in_thread(self.backend.load, name="lmql_nb-load")
            loading = self._loading
        await aio.wait(loading)
        return self.backend

    async def generate(self, prompt: str, max_tokens: Optional[int] = None, *,
                       on_token: Optional[TokenCallback] = None, **kwargs: Any) -> GenerateResult:
        """Complete `prompt`.

        Returns the completion only: a `str` for one sequence, a `list[str]` for several
        (`decoder="sample", n=2`, `decoder="beam", n=3`, best first for beams). With
        `return_details=True`, `Generation` objects (text, per-token log-probabilities,
        top-k alternatives) instead of strings.

        Options: `max_tokens` (None: until end-of-sequence or the context is full),
        `decoder` ("argmax", "sample", "beam"), `n`, `temperature`, `top_k`, `top_p`,
        `seed`, `top_logprobs` (alternatives per token, up to 20), `return_details`,
        `cache` (False: compute afresh). Constraints, combinable, under every decoder:
        `stops_at`, `stops_before`, `choices`, `regex`, `type=int`, `json_schema` (a dict
        or a pydantic model class) and `where` (LMQL's expression language over
        `RESPONSE`). `on_token(sequence_index, token)` is called from the model's thread
        as tokens are generated.
        """
        check_prompt(prompt)
        options = parse_generate_options(max_tokens, **kwargs)
        key = None
        if options.cache and options.deterministic and result_cache.enabled:
            key = make_key("generate", await self._identity(), prompt, options.cache_key())
            generations = result_cache.get(key, generations_from_data)
            if generations is not None:
                if on_token is not None:
                    _replay(generations, on_token)
                return _shape(generations, options)
        backend = await self._ready()
        generations = await backend.generate(prompt, options, on_token)
        if key is not None and all(g.finish_reason != "cancelled" for g in generations):
            result_cache.put(key, generations, generations_to_data)
        return _shape(generations, options)

    def generate_sync(self, *args: Any, **kwargs: Any) -> GenerateResult:
        """Synchronous `generate`: works in scripts, threads and running event loops."""
        return aio.run_sync(self.generate, *args, **kwargs)

    async def score(self, prompt: str, values: Union[str, list[str]], **kwargs: Any) -> ScoringResult:
        """Score each of `values` as a continuation of `prompt`.

        A value's score is the log-probability of its tokens given the prompt, on the
        joint tokenisation of prompt + value. Options: `cache` (False: compute afresh).
        """
        check_prompt(prompt)
        values = check_values(values)
        options = parse_score_options(**kwargs)
        key, scored = None, None
        if options.cache and result_cache.enabled:
            key = make_key("score", await self._identity(), prompt, values)
            scored = result_cache.get(key, scores_from_data)
        if scored is None:
            backend = await self._ready()
            scored = await backend.score(prompt, values, options)
            if key is not None:
                result_cache.put(key, scored, scores_to_data)
        return ScoringResult(prompt, values, [s.tokens for s in scored],
                             [s.token_ids for s in scored], [s.logprobs for s in scored],
                             self.model_identifier)

    def score_sync(self, *args: Any, **kwargs: Any) -> ScoringResult:
        """Synchronous `score`: works in scripts, threads and running event loops."""
        return aio.run_sync(self.score, *args, **kwargs)


def _shape(generations: list[Generation], options: GenerateOptions) -> GenerateResult:
    items: list = list(generations) if options.return_details else [g.text for g in generations]
    return items[0] if options.n == 1 else items


def _replay(generations: list[Generation], on_token: Callable) -> None:
    for index, generation in enumerate(generations):
        for token in generation.tokens:
            on_token(index, token)
