"""`LLM`: a model, with `generate`, `score` and `score_many` as coroutines and `_sync` twins."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import threading
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from ..core import aio, continuation
from ..backends.base import Backend
from ..core.options import (GenerateOptions, check_prompt, check_values, parse_generate_options,
                      parse_score_options)
from . import tracing
from .result_cache import make_key
from .result_cache import results as result_cache
from ..core.results import Alternative, Generation, TokenCallback, TokenInfo
from ..core.serialization import (generations_from_data, generations_to_data, scores_from_data,
                            scores_to_data)
from .score_many import (Values, check_gold, check_prompts, fill, interrupted, progress_bar,
                         values_per_prompt)
from ..core.scoring import ScoringResult, ScoringTable
from ..tokenization.chat import check_messages, prompt_text
from ..tokenization.tokenizer import Tokenizer

GenerateResult = Union[str, list[str], Generation, list[Generation]]
#: a text, or a conversation: a list of {"role": ..., "content": ...} messages
Prompt = Union[str, Sequence[Mapping[str, str]]]


def _prompt_or_messages(prompt: Any) -> Optional[list[dict[str, str]]]:
    """None for a valid text prompt; the checked messages of a conversation; else a
    TypeError or ValueError naming what is wrong."""
    if isinstance(prompt, (list, tuple)):
        if prompt and not any(isinstance(item, Mapping) for item in prompt):
            raise TypeError(f"prompt must be a str or a conversation (a list of {{'role': "
                            f"..., 'content': ...}} dicts), got a list of "
                            f"{type(prompt[0]).__name__}")
        return check_messages(prompt, "prompt")
    check_prompt(prompt)
    return None


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
        self._loading: Optional[concurrent.futures.Future[None]] = None
        self._identity_value: Optional[str] = None

    def __repr__(self) -> str:
        return f"lmql_nb.LLM({self.model_identifier!r})"

    @property
    def loaded(self) -> bool:
        """True once the model is loaded (the first call loads it)."""
        loading = self._loading
        return loading is not None and loading.done() and loading.exception() is None

    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer: `encode`, `decode`, `tokenize`, `vocab_size`, BOS/EOS ids."""
        return self.backend.get_tokenizer()

    async def _identity(self) -> str:
        """The backend's identity for result caches (computed once, off the event loop:
        it may have to convert the model first)."""
        if self._identity_value is None:
            self._identity_value = await aio.wait(aio.run_in_thread(self.backend.identity))
        return self._identity_value

    async def _fingerprint(self) -> str:
        """A short hash of the backend's identity (its files: weights and tokenizer)."""
        return hashlib.sha256((await self._identity()).encode()).hexdigest()[:16]

    async def _stamped(self, generations: list[Generation]) -> list[Generation]:
        """`generations` marked as this model's (see `Generation.model`)."""
        fingerprint = await self._fingerprint()
        return [dataclasses.replace(g, model=self.model_identifier, fingerprint=fingerprint)
                for g in generations]

    async def _ready(self) -> Backend:
        with self._load_lock:
            if self._loading is None or (self._loading.done() and self._loading.exception()):
                self._loading = aio.run_in_thread(self.backend.load, name="lmql_nb-load")
            loading = self._loading
        await aio.wait(loading)
        return self.backend

    def _continued(self) -> tuple[str, ...]:
        """What result-cache keys add for a call made in a continuation block on a model
        whose numbers continuing changes (llama.cpp): ("continued",), else nothing. Such
        a call's result is kept apart, so a plain call with the same prompt never gets
        it: a plain call's numbers are its prompt's read whole, whatever ran before."""
        if continuation.current() is not None and self.backend.continuation_changes_numbers:
            return ("continued",)
        return ()

    async def _prompt_key(self, prompt: Prompt) -> Any:
        """A prompt as result-cache keys hold it: a conversation with the template that
        renders it."""
        if isinstance(prompt, str):
            return prompt
        fingerprint = await aio.wait(aio.run_in_thread(self.backend.chat_fingerprint))
        return {"messages": list(prompt), "chat_template": fingerprint}

    async def generate(self, prompt: Prompt, max_tokens: Optional[int] = None, *,
                       on_token: Optional[TokenCallback] = None, **kwargs: Any) -> GenerateResult:
        """Complete `prompt`: a text, or a conversation (a list of `{"role": ...,
        "content": ...}` messages, roles "system", "user", "assistant"), rendered with the
        model's chat template and continued in the assistant's turn (after an assistant's
        message, that message is continued). A conversation's generation ends at the
        template's end-of-turn token.

        Returns the completion only: a `str` for one sequence, a `list[str]` for several
        (`decoder="sample", n=2`, `decoder="beam", n=3`, best first for beams). With
        `return_details=True`, `Generation` objects (text, per-token log-probabilities,
        top-k alternatives) instead of strings.

        Options: `max_tokens` (None: until end-of-sequence or the context is full),
        `decoder` ("argmax", "sample", "beam", "beam_sample": a beam search whose
        expansions are sampled, on in-process models), `n`, `temperature`, `top_k`, `top_p`,
        `seed`, `repetition_penalty`, `frequency_penalty`, `presence_penalty` (every
        decoder: docs/api.md), `top_logprobs` (alternatives per token, up to 20),
        `return_details`,
        `cache` (False: compute afresh). As in LMQL, a non-zero `temperature` without a
        `decoder` means `decoder="sample"` (`temperature=0` means argmax). Constraints,
        combinable, under every decoder:
        `stops_at`, `stops_before`, `choices`, `regex`, `type=int`, `json_schema` (a dict
        or a pydantic model class), `starts_with`, `min_tokens`, `where` (LMQL's expression
        language over `RESPONSE`: docs/constraints.md) and any keyword registered since
        (`lmql_nb.constraints.keywords`). `on_token(sequence_index, token)` is called from
        the model's thread as tokens are generated. `verbose=True` (LMQL's) prints one line
        per call on stdout: the model, the prompt and what came back.
        """
        verbose = kwargs.pop("verbose", False)
        if not isinstance(verbose, bool):
            raise TypeError(f"verbose must be True or False, got {verbose!r}")
        messages = _prompt_or_messages(prompt)
        options = parse_generate_options(max_tokens, **kwargs)
        key = None
        if options.cache and options.deterministic and result_cache.enabled:
            key = make_key("generate", await self._identity(), await self._prompt_key(prompt),
                           options.cache_key(), *self._continued())
            generations = result_cache.get(key, generations_from_data)
            if generations is not None:
                if on_token is not None:
                    _replay(generations, on_token)
                await self._trace("lmql_nb.generate", prompt, dict(kwargs, max_tokens=max_tokens),
                                  [g.text for g in generations],
                                  sum(len(g.tokens) for g in generations), cached=True)
                if verbose:
                    self._log_call(prompt, generations, cached=True)
                return _shape(await self._stamped(generations), options)
        backend = await self._ready()
        if messages is None:
            generations = await backend.generate(str(prompt), options, on_token)
        else:
            generations = [dataclasses.replace(g, messages=tuple(messages)) for g in
                           await backend.generate_chat(messages, options, on_token)]
        if key is not None and all(g.finish_reason != "cancelled" for g in generations):
            result_cache.put(key, generations, generations_to_data)
        await self._trace("lmql_nb.generate", prompt, dict(kwargs, max_tokens=max_tokens),
                          [g.text for g in generations], sum(len(g.tokens) for g in generations))
        if verbose:
            self._log_call(prompt, generations, cached=False)
        return _shape(await self._stamped(generations), options)

    def _log_call(self, prompt: Prompt, generations: list[Generation], cached: bool) -> None:
        """`verbose=True`: the call on one line of stdout (as a query's verbose lines)."""
        texts = ", ".join(repr(g.text) for g in generations)
        tokens = sum(len(g.tokens) for g in generations)
        print(f"lmql_nb generate on {self.model_identifier}: {prompt!r} -> {texts} "
              f"({tokens} tokens{', cached' if cached else ''})", flush=True)

    async def _trace(self, name: str, prompt: Any, call: dict[str, Any], result: Any,
                     tokens: int, cached: bool = False) -> None:
        """Record the call for the active inference certificate, if any (`tracing`)."""
        if tracing.active_tracer() is None:
            return
        backend = await self._ready()
        messages = _prompt_or_messages(prompt)
        ids: Optional[list[int]] = None
        if messages is not None:
            try:
                ids, text = await backend.chat_prompt(messages)
            except ValueError:  # a backend that does not expose a conversation's tokens
                text = ""
        else:
            text = str(prompt)
            ids = await backend.encode_prompt(text)
        tracing.record(name, {
            "model": self.model_identifier,
            "model_options": tracing.model_options(getattr(backend, "options", None)),
            "messages": messages,
            "prompt": text,
            "prompt_ids": list(ids) if ids is not None else None,
            "kwargs": {k: v for k, v in call.items() if k != "on_token"},
            "result": result,
            "tokens": tokens,
            "cached": cached,
        })

    def generate_sync(self, *args: Any, **kwargs: Any) -> GenerateResult:
        """Synchronous `generate`: works in scripts, threads and running event loops."""
        return aio.run_sync(self.generate, *args, **kwargs)

    async def branch(self, generation: Generation, position: int,
                     token: Union[Alternative, int, str], max_tokens: Optional[int] = None, *,
                     on_token: Optional[TokenCallback] = None,
                     **kwargs: Any) -> Union[Generation, list[Generation]]:
        """Continue `generation` from its token at `position` replaced by `token`.

        `generation` comes from `generate(..., return_details=True)` (or an earlier
        `branch`); `token` is an `Alternative` from its tokens' `top`, a token id, or a
        text that is one token. The branch runs on token ids: the prompt's ids, the ids
        of tokens `0..position-1`, then the chosen id (never re-tokenised text, which
        could merge tokens), so it equals `generate` on exactly that token prefix.

        Returns a `Generation` (a list of them for `n > 1`) of what follows: the chosen
        token first (with its log-probability, rank and alternatives), then the
        continuation; its `prefix_ids` are the tokens it shares with `generation`.
        `max_tokens` counts the chosen token. Options and constraints are `generate`'s
        (a constraint sees the shared tokens as the start of the response);
        `return_details` is always on.
        """
        if not isinstance(generation, Generation):
            raise TypeError(f"generation must be an lmql_nb.Generation (from generate(..., "
                            f"return_details=True)), got {type(generation).__name__}")
        if isinstance(position, bool) or not isinstance(position, int):
            raise TypeError(f"position must be an int, got {type(position).__name__}")
        if not 0 <= position < len(generation.tokens):
            raise ValueError(f"position must be in [0, {len(generation.tokens)}) (the "
                             f"generation has {len(generation.tokens)} tokens), got {position}")
        await self._check_same_model(generation)
        if isinstance(token, str) and not token:
            raise ValueError("token is empty text, which names no token: pass a token's "
                             "text (one token), a token id, or an Alternative from the "
                             "token's top")
        kept = generation.tokens[:position]
        if any(t.token_id < 0 for t in kept):
            raise ValueError("this generation's token ids are unknown (its server did not "
                             "return them), so it cannot be continued from token ids")
        options = parse_generate_options(max_tokens, **{"return_details": True, **kwargs})
        if options.max_tokens == 0:
            raise ValueError("max_tokens=0 leaves no room for the chosen token; pass None "
                             "or at least 1")
        backend = await self._ready()
        chosen = await _chosen_id(backend, generation.tokens[position], token)
        if generation.messages:
            prompt_ids, _ = await backend.chat_prompt(list(generation.messages))
        else:
            prompt_ids = await backend.encode_prompt(generation.prompt)
        prefix = list(generation.prefix_ids) + [t.token_id for t in kept]
        generations = await backend.generate_ids(prompt_ids, generation.prompt, options,
                                                 on_token, prefix_ids=prefix,
                                                 forced_ids=[chosen])
        if generation.messages:
            generations = [dataclasses.replace(g, messages=generation.messages)
                           for g in generations]
        generations = await self._stamped(list(generations))
        return generations[0] if options.n == 1 else generations

    async def _check_same_model(self, generation: Generation) -> None:
        """Refuse a generation another model made: its token ids mean other text here
        (and its log-probabilities other numbers)."""
        if not generation.fingerprint or generation.fingerprint == await self._fingerprint():
            return
        if await self._reads_ids_alike(generation):
            return  # the same vocabulary (say the same model served, or quantised)
        if generation.model != self.model_identifier:
            raise ValueError(f"this generation comes from the model {generation.model!r}, "
                             f"not {self.model_identifier!r}: branch it on the model that "
                             f"made it (lmql_nb.model({generation.model!r}).branch), whose "
                             "token ids it holds")
        raise ValueError(f"this generation comes from {self.model_identifier!r} as its files "
                         "were before they changed (other weights or another tokenizer): "
                         "generate it again to branch it")

    async def _reads_ids_alike(self, generation: Generation) -> bool:
        """True if this model's tokenizer reads the generation's token ids as the text it
        recorded: then its ids mean the same here (the tokenizer's identity, checked by
        what it does rather than by where its files are)."""
        ids = [t.token_id for t in generation.tokens]
        if not ids or any(i is None or i < 0 for i in ids):
            return False
        tokenizer = (await self._ready()).get_tokenizer()
        text: str = await aio.wait(aio.run_in_thread(tokenizer.decode, ids))
        def plain(value: str) -> str:
            # bytes that are no whole UTF-8 character read as U+FFFD, alone or in context
            return value.replace("\ufffd", "").strip()

        recorded = plain("".join(t.text for t in generation.tokens))
        return bool(recorded) and plain(text) == recorded

    def branch_sync(self, *args: Any, **kwargs: Any) -> Union[Generation, list[Generation]]:
        """Synchronous `branch`: works in scripts, threads and running event loops."""
        return aio.run_sync(self.branch, *args, **kwargs)

    async def score(self, prompt: Prompt, values: Union[str, list[str]],
                    **kwargs: Any) -> ScoringResult:
        """Score each of `values` as a continuation of `prompt`.

        `prompt` may be a conversation (see `generate`): each value is then the
        assistant's reply, scored as its text followed by the template's end-of-turn
        token (after an assistant's message, a value continues that message instead).

        A value's score is the log-probability of its tokens given the prompt, on the
        joint tokenisation of prompt + value. Options: `cache` (False: compute afresh).
        """
        messages = _prompt_or_messages(prompt)
        values = check_values(values)
        options = parse_score_options(**kwargs)
        key, scored = None, None
        if options.cache and result_cache.enabled:
            key = make_key("score", await self._identity(), await self._prompt_key(prompt),
                           values, *self._continued())
            scored = result_cache.get(key, scores_from_data)
        backend = await self._ready() if scored is None or messages is not None else None
        if scored is None:
            assert backend is not None
            scored = await (backend.score(str(prompt), values, options) if messages is None
                            else backend.score_chat(messages, values, options))
            if key is not None:
                result_cache.put(key, scored, scores_to_data)
        await self._trace("lmql_nb.score", prompt, dict(kwargs, values=values),
                          [[float(x) for x in s.logprobs] for s in scored],
                          sum(len(s.token_ids) for s in scored))
        text = str(prompt)
        scorer = functools.partial(aio.run_sync, self._prompt_scores, text)
        if messages is not None:
            assert backend is not None
            try:
                _, text = await backend.chat_prompt(messages)
            except ValueError:  # a server's rendering (its ids are not exposed, see branch)
                text = prompt_text(messages)
            scorer = functools.partial(aio.run_sync, self._chat_prompt_scores, messages)
        return ScoringResult(text, values, [s.tokens for s in scored],
                             [s.token_ids for s in scored], [s.logprobs for s in scored],
                             self.model_identifier, scorer, messages or ())

    async def _chat_prompt_scores(self, messages: list[dict[str, str]]
                                  ) -> tuple[list[int], list[float]]:
        backend = await self._ready()
        return await backend.chat_prompt_scores(messages)

    async def _prompt_scores(self, prompt: str) -> tuple[list[int], list[float]]:
        backend = await self._ready()
        return await backend.prompt_scores(prompt)

    def score_sync(self, *args: Any, **kwargs: Any) -> ScoringResult:
        """Synchronous `score`: works in scripts, threads and running event loops."""
        return aio.run_sync(self.score, *args, **kwargs)

    async def score_many(self, prompts: Iterable[str], values: Values, *,
                         gold: Optional[Iterable[str]] = None, progress: bool = True,
                         **kwargs: Any) -> ScoringTable:
        """Score a dataset: each prompt against `values` (one list shared by every prompt,
        or one list per prompt); a `ScoringTable` with one `ScoringResult` per prompt.

        Rows stream through `score` with a bounded number in flight (memory stays
        bounded at any length; the in-process engine runs them in shared forward
        passes). `gold` (one of its row's values per prompt) enables `accuracy()` and
        `confusion()`; `progress` shows tqdm's bar (a widget in notebooks, text in
        terminals). Options as for `score`. Runs on asyncio or trio. A cancelled call
        raises; the rows it finished stay in the result cache (when on), so a new call
        computes only the rest.
        """
        table = self._table(prompts, values, gold, progress, kwargs)
        bar = progress_bar(len(table), progress)
        try:
            return await fill(self.score, table, self.backend.score_window, bar, kwargs)
        finally:
            if bar is not None:
                bar.close()

    def score_many_sync(self, prompts: Iterable[str], values: Values, *,
                        gold: Optional[Iterable[str]] = None, progress: bool = True,
                        **kwargs: Any) -> ScoringTable:
        """Synchronous `score_many`. An interrupt (KeyboardInterrupt, a notebook's stop
        button) stops the work and returns the table of the rows finished so far (the
        others are None; `complete` is False), with a warning."""
        table = self._table(prompts, values, gold, progress, kwargs)
        bar = progress_bar(len(table), progress)  # drawn from the caller's thread
        future = aio.submit(fill(self.score, table, self.backend.score_window, bar, kwargs))
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            return interrupted(table)
        finally:
            if bar is not None:
                bar.close()

    def _table(self, prompts: Any, values: Any, gold: Any, progress: Any,
               options: dict[str, Any]) -> ScoringTable:
        """An empty table for `score_many`, after checking every argument."""
        parse_score_options(**options)
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        checked = check_prompts(prompts)
        per_prompt = values_per_prompt(values, len(checked))
        return ScoringTable(checked, per_prompt, self.model_identifier,
                            check_gold(gold, per_prompt))


def _shape(generations: list[Generation], options: GenerateOptions) -> GenerateResult:
    items: list[Any] = (list(generations) if options.return_details
                        else [g.text for g in generations])
    return items[0] if options.n == 1 else items


async def _chosen_id(backend: Backend, original: TokenInfo,
                     token: Union[Alternative, int, str]) -> int:
    """The id `branch` continues with: an `Alternative`'s, an id, or the one token a text
    is (an alternative of `original` with that text first)."""
    if isinstance(token, Alternative):
        return token.token_id
    if isinstance(token, int) and not isinstance(token, bool):
        vocabulary = backend.get_tokenizer().vocab_size
        if token < 0 or 0 < vocabulary <= token:  # a server's tokenizer may not say (-1)
            raise ValueError(f"token id {token} is outside the vocabulary [0, {vocabulary})")
        return token
    if isinstance(token, str):
        for alternative in original.top:
            if alternative.text == token:
                return alternative.token_id
        ids: list[int] = await aio.wait(aio.run_in_thread(backend.get_tokenizer().encode, token))
        if len(ids) != 1:
            raise ValueError(f"{token!r} is {len(ids)} tokens for this model, not one; pass "
                             "an Alternative from the token's top or a token id")
        return ids[0]
    raise TypeError(f"token must be an Alternative, a token id (int) or a one-token str, "
                    f"got {type(token).__name__}")


def _replay(generations: list[Generation], on_token: TokenCallback) -> None:
    for index, generation in enumerate(generations):
        for token in generation.tokens:
            on_token(index, token)
