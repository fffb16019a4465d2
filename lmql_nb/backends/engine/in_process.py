"""What every in-process backend shares: a model on a worker thread, driven by the engine.

A subclass says how to load its tokenizer and its `LanguageModel` (transformers,
llama.cpp); everything else is here: the worker that batches concurrent calls, the
decoders, constraints, scoring, and a token-id API (`generate_ids`, `score_ids`) that
the text API and the HTTP server both use.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ...core import aio, continuation
from ...core.options import GenerateOptions, ScoreOptions
from ...core.results import Generation, TokenCallback, ValueScores
from ...tokenization.tokenizer import (EngineTokenizer, common_prefix_length, split_continuation,
                                       token_pieces)
from ...core.validation import Options, option
from ..base import Backend
from ..protocol import ScoredToken

if TYPE_CHECKING:
    from ...tokenization.chat import ChatFormat


@dataclasses.dataclass(frozen=True)
class InProcessOptions(Options):
    """What every in-process backend accepts."""

    threads: Optional[int] = option(None, "the model's thread count (None: all cores but "
                                    "one)", "int", minimum=1, optional=True)
    batch_window: float = option(0.005, "seconds the worker waits after a request for "
                                 "others to batch with", "number", minimum=0, maximum=1,
                                 unit="of seconds")
    chat_template: Optional[str] = option(
        None, "the chat template conversations are rendered with: a Jinja template or the "
        "path of a file holding one (None: the model's own)", "str", optional=True)


#: share of the memory available at load time that the rows of one batch may take
ROWS_MEMORY_SHARE = 0.5
#: what one row costs per token of vocabulary in a decode step: its logits and their
#: log-softmax (float32), the float64 copies sampling filters, exponentiates and sums
#: (measured on Gemma 3 270M: about 7.6 MB a row for its 262k vocabulary)
ROW_BYTES_PER_LOGIT = 32


def available_memory() -> Optional[int]:
    """Bytes of memory available to this process now (None where it cannot be read)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_max_rows(vocab_size: int, available: Optional[int] = None) -> Optional[int]:
    """How many rows (sequences: n x prompts, beams) may be decoded at once: what half the
    available memory holds at `ROW_BYTES_PER_LOGIT` bytes per logit (None if unknown)."""
    available = available_memory() if available is None else available
    if available is None:
        return None
    return max(1, int(available * ROWS_MEMORY_SHARE) // (ROW_BYTES_PER_LOGIT * vocab_size))


def default_threads(available: Optional[int] = None) -> int:
    """Threads for the model's matrix work: all cores but one (at least one), at most
    `available`. On a 2-core machine one thread gave 2-3x faster decode steps than two
    while anything else (the kernel, the browser) ran."""
    import os

    cores = max(1, (os.cpu_count() or 1) - 1)
    return cores if available is None else max(1, min(available, cores))


def _groups_of_rows(requests: Sequence[Any], max_rows: Optional[int]) -> list[list[Any]]:
    """Requests in arrival order, grouped so that no group holds more than `max_rows`
    sequences."""
    if max_rows is None:
        return [list(requests)]
    groups: list[list[Any]] = [[]]
    rows = 0
    for request in requests:
        n = request.payload.options.n
        if groups[-1] and rows + n > max_rows:
            groups.append([])
            rows = 0
        groups[-1].append(request)
        rows += n
    return groups


class InProcessBackend(Backend):
    """A model this process runs, on one worker thread that batches concurrent calls."""

    # two worker batches: one runs while the next gathers
    score_window = 64

    def __init__(self, model_id: str, options: InProcessOptions):
        self.model_id = model_id
        self.batch_window = options.batch_window
        self.threads = options.threads
        self._lock = threading.RLock()
        self._model: Any = None  # a LanguageModel once loaded
        self._worker: Any = None
        from ...tokenization.chat import template_source

        self._chat_override = (None if options.chat_template is None
                               else template_source(options.chat_template))
        self._chat_format: Optional[ChatFormat] = None

    # what a subclass provides -------------------------------------------------------------

    @abc.abstractmethod
    def _load_model(self) -> Any:
        """Load and return the `LanguageModel` (called once, under the lock)."""

    @abc.abstractmethod
    def get_tokenizer(self) -> EngineTokenizer:
        """The model's tokenizer, with what the engine needs (EOS ids, llguidance's view)."""

    # loading ------------------------------------------------------------------------------

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from .worker import ModelWorker

            self._stop_at_end_of_turn(self.get_tokenizer())
            self._model = self._load_model()
            self._worker = ModelWorker(self._run, self.model_id, batch_window=self.batch_window)

    @property
    def tokenizer(self) -> EngineTokenizer:
        return self.get_tokenizer()

    # conversations -----------------------------------------------------------------------

    #: True for the embedded Gemma, which carries no chat template (it gets Gemma's)
    embedded = False

    def _chat_fallback(self) -> Optional[tuple[str, str]]:
        """The (template, origin) for a model without one of its own (None: refuse)."""
        from ...tokenization.chat import GEMMA_ORIGIN, GEMMA_TEMPLATE

        return (GEMMA_TEMPLATE, GEMMA_ORIGIN) if self.embedded else None

    def chat_format(self) -> "ChatFormat":
        """The `ChatFormat` conversations are rendered with (ValueError naming
        `chat_template` if the model has no template and none was given)."""
        with self._lock:
            if self._chat_format is None:
                from ...tokenization.chat import resolve

                self._chat_format = resolve(self.get_tokenizer(), self._chat_override,
                                            self.model_id, self._chat_fallback())
            return self._chat_format

    def _stop_at_end_of_turn(self, tokenizer: EngineTokenizer) -> None:
        """Generation ends at the chat template's end-of-turn token, as it ends at EOS."""
        try:
            end = self.chat_format().end_of_turn
        except ValueError:  # no template: nothing to add
            return
        if end is not None and end not in tokenizer.eos_token_ids:
            tokenizer.eos_token_ids = tokenizer.eos_token_ids | {end}

    def chat_fingerprint(self) -> str:
        try:
            return self.chat_format().fingerprint
        except ValueError:
            return ""

    async def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], str]:
        chat = self.chat_format()
        prompt: tuple[list[int], str] = await aio.wait(
            aio.run_in_thread(chat.prompt, messages, name="lmql_nb-chat"))
        return prompt

    async def generate_chat(self, messages: list[dict[str, str]], options: GenerateOptions,
                            on_token: Optional[TokenCallback] = None) -> list[Generation]:
        prompt_ids, text = await self.chat_prompt(messages)
        return await self.generate_ids(prompt_ids, text, options, on_token)

    async def score_chat(self, messages: list[dict[str, str]], values: list[str],
                         options: ScoreOptions) -> list[ValueScores]:
        chat = self.chat_format()

        def splits() -> list[tuple[list[int], list[int]]]:
            return [chat.split(messages, value) for value in values]

        pairs = await aio.wait(aio.run_in_thread(splits, name="lmql_nb-chat"))
        logprobs = await self._score_splits(pairs, options.cache)
        return [ValueScores(value_ids, chat.pieces(context, value_ids), scores)
                for (context, value_ids), scores in zip(pairs, logprobs)]

    async def chat_prompt_scores(self, messages: list[dict[str, str]]
                                 ) -> tuple[list[int], list[float]]:
        """`prompt_scores` for a conversation's token ids."""
        ids, _ = await self.chat_prompt(messages)
        return await self._ids_scores(ids)

    @property
    def context_length(self) -> Optional[int]:
        return self._model.context_length if self._model is not None else None

    def _run(self, requests: Sequence[Any]) -> None:
        from .beam import run_beam
        from .generation import run_generate
        from .scoring import run_score

        kind = requests[0].batch_key[0]
        if kind == "score":
            run_score(self._model, requests)
        elif kind == "beam":
            for request in requests:
                run_beam(self._model, self.tokenizer, request)
        else:
            for group in _groups_of_rows(requests, self._model.max_rows):
                run_generate(self._model, self.tokenizer, group)

    def check_length(self, tokens: int, what: str) -> None:
        """ValueError if `tokens` exceed the model's context."""
        limit = self.context_length
        if limit is not None and tokens > limit:
            raise ValueError(f"{what} is {tokens} tokens long, more than the model's context "
                             f"of {limit} tokens; shorten it")

    @property
    def max_rows(self) -> Optional[int]:
        """How many sequences the model decodes at once (None: no limit known)."""
        return self._model.max_rows if self._model is not None else None

    def check_rows(self, rows: int, what: Optional[str] = None) -> None:
        """ValueError if one call asks for more sequences than the model decodes at once
        (`what` describes them; default "n=<rows>")."""
        limit = self.max_rows
        if limit is not None and rows > limit:
            raise ValueError(f"{what or f'n={rows}'} is more sequences than this model "
                             f"decodes at once ({limit}); ask for fewer, or load the model "
                             f"with a larger {self.rows_option}= (more memory)")

    #: the `lmql_nb.model(...)` option that sets `max_rows`
    rows_option = "max_rows"

    async def _submit(self, batch_key: tuple[Any, ...], payload: Any,
                      on_progress: Optional[Callable[[Any], None]] = None) -> Any:
        from .worker import Request

        request = self._worker.submit(Request(batch_key, payload, on_progress))
        return await aio.wait(request.future, request.cancel)

    # generation ---------------------------------------------------------------------------

    async def generate(self, prompt: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        prompt_ids = self.tokenizer.encode_prompt(prompt)
        return await self.generate_ids(prompt_ids, prompt, options, on_token)

    async def encode_prompt(self, prompt: str) -> list[int]:
        return self.tokenizer.encode_prompt(prompt)

    async def generate_ids(self, prompt_ids: Sequence[int], prompt: str,
                           options: GenerateOptions,
                           on_token: Optional[TokenCallback] = None, *,
                           prefix_ids: Sequence[int] = (),
                           forced_ids: Sequence[int] = ()) -> list[Generation]:
        from .generation import GenerateJob

        vocabulary = self._model.vocab_size
        for name, ids in (("prompt_ids", prompt_ids), ("prefix_ids", prefix_ids),
                          ("forced_ids", forced_ids)):
            bad = [t for t in ids if isinstance(t, bool) or not isinstance(t, int)
                   or not 0 <= t < vocabulary]
            if bad:
                raise ValueError(f"{name} holds {bad[:3]!r}, not token ids of this model "
                                 f"(ints in [0, {vocabulary}))")
        if options.max_tokens is not None and options.max_tokens < len(forced_ids):
            raise ValueError(f"max_tokens={options.max_tokens} leaves no room for the "
                             f"{len(forced_ids)} forced token(s); allow at least that many")
        prompt_ids = list(prompt_ids)
        context = len(prompt_ids) + len(prefix_ids)
        self.check_length(context + len(forced_ids), "the prompt")
        self.check_rows(options.n)
        room = self.context_length - context if self.context_length else None
        if options.max_tokens is None and room is None:
            raise ValueError("this model does not say how long its context is, so "
                             "generation needs a limit: pass max_tokens=")
        if options.max_tokens is not None and (room is None or options.max_tokens <= room):
            max_new, limited = options.max_tokens, False
        else:
            assert room is not None  # a model without a context length needs max_tokens
            max_new, limited = room, True
        constraint = None
        if options.constraint is not None and options.constraint.shaped:
            # seconds the first time for a tokenizer: off the event loop
            constraint = await aio.wait(aio.run_in_thread(self.compile, options.constraint,
                                                          name="lmql_nb-constraint"))
        job = GenerateJob(prompt, prompt_ids, options, max_new, limited, constraint,
                          tuple(prefix_ids), tuple(forced_ids), continuation.current())
        # beam requests run alone; argmax and sampling requests batch together
        key = ("beam", id(job)) if options.decoder in ("beam", "beam_sample") else ("generate",)
        progress = None if on_token is None else (lambda item: on_token(*item))
        generations: list[Generation] = await self._submit(key, job, progress)
        return generations

    def compile(self, spec: Any) -> Any:
        """The constraint `spec` compiled for this model's tokenizer and vocabulary."""
        from ...constraints.matcher import Constraint

        return Constraint(spec, self.tokenizer, self._model.vocab_size)

    # scoring ------------------------------------------------------------------------------

    async def score(self, prompt: str, values: list[str],
                    options: ScoreOptions) -> list[ValueScores]:
        tokenizer = self.tokenizer
        splits = [split_continuation(tokenizer, prompt, value) for value in values]
        # values run after their common context; without a BOS, a value that merges with
        # the prompt's first token starts from the start token instead, so values are
        # grouped by their context's first token (one group unless that happens)
        groups: dict[int, list[int]] = {}
        for i, (context, _) in enumerate(splits):
            groups.setdefault(context[0], []).append(i)
        logprobs: list[list[float]] = [[] for _ in values]
        for members in groups.values():  # awaited in turn: the caller may run trio
            group_scores = await self._score_splits([splits[i] for i in members], options.cache)
            for i, scores in zip(members, group_scores):
                logprobs[i] = scores
        return [ValueScores(value_ids, token_pieces(tokenizer, context, value_ids), scores)
                for (context, value_ids), scores in zip(splits, logprobs)]

    async def prompt_scores(self, prompt: str) -> tuple[list[int], list[float]]:
        return await self._ids_scores(self.tokenizer.encode_prompt(prompt))

    async def _ids_scores(self, ids: list[int]) -> tuple[list[int], list[float]]:
        self.check_length(len(ids), "the prompt")
        if len(ids) < 2:
            return [], []
        return ids[1:], (await self.score_ids(ids[:1], [ids[1:]], [len(ids) - 1]))[0]

    async def _score_splits(self, splits: list[tuple[list[int], list[int]]],
                            use_cache: bool) -> list[list[float]]:
        """Score (context, value ids) pairs whose contexts share at least a first token."""
        first_context = splits[0][0]
        shared = min(common_prefix_length(context, first_context) for context, _ in splits)
        suffixes = [context[shared:] + value_ids for context, value_ids in splits]
        self.check_length(shared + max(len(s) for s in suffixes),
                          "the prompt with the longest value")
        return await self.score_ids(first_context[:shared], suffixes,
                                    [len(v) for _, v in splits], use_cache)

    async def score_ids(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        value_lengths: Sequence[int], use_cache: bool = True,
                        score_prefix: bool = False) -> list[list[float]]:
        """Per suffix, the log-probabilities of its last `value_lengths[i]` tokens after
        `prefix` and the suffix tokens before them (with `score_prefix`, the prefix's
        tokens after its first count as the suffix's first: see `ScoreJob`)."""
        from .scoring import ScoreJob

        job = ScoreJob(list(prefix), [list(s) for s in suffixes], list(value_lengths),
                       use_prefix_cache=use_cache, score_prefix=score_prefix,
                       continuation=continuation.current())
        scores: list[list[float]] = await self._submit(("score", score_prefix), job)
        return scores

    async def score_ids_top(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                            top_logprobs: int, use_cache: bool = True,
                            score_prefix: bool = False) -> list[list[ScoredToken]]:
        """Per suffix, a `ScoredToken` (log-probability, rank, the `top_logprobs` best
        alternatives) for each of its tokens after `prefix` and the tokens before it
        (with `score_prefix`, first for each of the prefix's tokens after its first)."""
        from .scoring import ScoreJob

        extra = len(prefix) - 1 if score_prefix else 0
        job = ScoreJob(list(prefix), [list(s) for s in suffixes],
                       [extra + len(s) for s in suffixes], use_prefix_cache=use_cache,
                       top_logprobs=top_logprobs, score_prefix=score_prefix,
                       continuation=continuation.current())
        rows: list[list[Any]] = await self._submit(("score", score_prefix), job)
        return rows
