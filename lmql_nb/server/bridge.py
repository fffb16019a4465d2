"""The model behind the HTTP API: a backend driven by token ids.

An OpenAI-compatible server must accept token-id prompts and return the log-probability
of every prompt token, so it works below `LLM.generate`/`LLM.score`, which take text: on
the `TokenIdBackend` protocol (`lmql_nb.backends.protocol`), which any backend may
implement; the in-process ones run it through their worker, so concurrent HTTP requests
still share forward passes.

Nothing here blocks the event loop: tokenisation and chat templates run on threads
(a few at a time), after a cheap length check refuses text too long for the context.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Sequence, TypeVar

from ..core import aio
from ..core.options import GenerateOptions
from ..core.results import Generation, TokenCallback
from ..backends.protocol import ScoredToken, TokenIdBackend
from ..tokenization import templates
from ..tokenization.tokenizer import common_prefix_length
from .errors import APIError, bad_request

if TYPE_CHECKING:
    from ..tokenization.chat import ChatFormat

T = TypeVar("T")

#: tokenisations and template renderings running at once (each on its own thread)
PREPARE_SLOTS = 4
#: texts (characters) and token lists shorter than this are (de)tokenised on the event
#: loop: well under a millisecond, less than the hop to a thread
INLINE_SIZE = 4096


class ServedModel:
    """One loaded model under the name clients ask for."""

    def __init__(self, backend: TokenIdBackend, name: str, model_id: str,
                 trust_request_chat_template: bool = False):
        self._backend = backend
        self.name = name
        self.model_id = model_id  # the id it was loaded from (reported as its root)
        self.trust_request_chat_template = trust_request_chat_template
        self.running = 0  # requests in the engine now (reported by /health)
        self.closing = False  # set once the server is shutting down
        self._slots: Optional[asyncio.Semaphore] = None
        self._tasks: set[asyncio.Task] = set()
        self._max_piece_chars: Optional[int] = None

    def load(self) -> None:
        """Load the model now (the server answers only once this is done)."""
        self._backend.load()
        self.tokenizer = self._backend.get_tokenizer()
        pieces = self.tokenizer.convert_ids_to_tokens(range(self.tokenizer.vocab_size))
        self._max_piece_chars = max(len(p or "") for p in pieces)

    @property
    def context_length(self) -> Optional[int]:
        return self._backend.context_length

    async def off_loop(self, function: Callable[..., T], *args: Any, size: int = INLINE_SIZE) -> T:
        """`function(*args)` on a thread, a few at a time, so the event loop stays free;
        inline when its input is small (`size` below `INLINE_SIZE`)."""
        if size < INLINE_SIZE:
            return function(*args)
        if self._slots is None:
            self._slots = asyncio.Semaphore(PREPARE_SLOTS)
        async with self._slots:
            return await aio.wait(aio.run_in_thread(function, *args, name="lmql_nb-prepare"))

    # tokens ---------------------------------------------------------------------------

    def _check_text_length(self, text: str, what: str) -> None:
        """Refuse, without tokenising, text longer than the context could hold: no token
        covers more characters than the longest vocabulary piece (4x for normalisers)."""
        limit = self.context_length
        if limit is not None and self._max_piece_chars:
            most = limit * self._max_piece_chars * 4
            if len(text) > most:
                raise bad_request(f"{what} is {len(text)} characters long: more than the "
                                  f"model's context of {limit} tokens can hold", "prompt")

    async def encode(self, text: str, add_special_tokens: bool = True,
                     what: str = "the prompt") -> list[int]:
        """Token ids of `text` (with BOS where the model expects one, by default)."""
        self._check_text_length(text, what)
        encode = self.tokenizer.encode_prompt if add_special_tokens else self.tokenizer.encode
        return await self.off_loop(encode, text, size=len(text))

    def check_ids(self, ids: Sequence[int], what: str = "the prompt") -> None:
        vocab = self.tokenizer.vocab_size
        bad = [t for t in ids if not 0 <= t < vocab]
        if bad:
            raise bad_request(f"{what} holds token ids outside the vocabulary [0, {vocab}): "
                              f"{bad[:5]}", "prompt")
        if not ids:
            raise bad_request(f"{what} is empty: pass at least one token", "prompt")
        limit = self.context_length
        if limit is not None and len(ids) > limit:
            raise bad_request(f"{what} is {len(ids)} tokens long, more than the model's "
                              f"context of {limit} tokens", "prompt")

    def token_text(self, token_id: int) -> str:
        """A token on its own as vLLM names it in `logprobs`: decoded alone, special
        tokens (end-of-sequence) by their text."""
        if token_id in self.tokenizer.eos_token_ids or token_id in self.tokenizer.special_ids:
            return self.tokenizer.convert_ids_to_tokens([token_id])[0]
        return self.tokenizer.decode([token_id])

    async def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids (special tokens left out)."""
        return await self.off_loop(self.tokenizer.decode, ids, size=len(ids))

    async def chat_prompt(self, messages: list[dict], template: Optional[str],
                          add_generation_prompt: bool,
                          continue_final_message: bool = False) -> list[int]:
        """The token ids of a conversation, through the model's chat template (or its
        `chat_template=`, or the request's), rendered as the Generations API renders it
        (`tokenization.chat`: sandboxed, on a thread). A request's template needs
        `--trust-request-chat-template`. The messages' content is text, the template's
        markup special (`encode_chat`). `continue_final_message`: the last message (an
        assistant's) left open after its content, as the Generations API continues it."""
        from ..tokenization.chat import ChatFormat

        self._check_text_length("".join(m["content"] for m in messages), "the messages")
        if template is not None:
            if not self.trust_request_chat_template:
                raise bad_request("this server does not run chat templates from requests: "
                                  "leave chat_template out to use the model's own, or start "
                                  "the server with --trust-request-chat-template",
                                  "chat_template")
            chat = ChatFormat(self.tokenizer, template, "the request's chat_template")
        else:
            try:
                chat = self.chat_format()
            except ValueError:
                raise bad_request("this model has no chat template: use /v1/completions "
                                  "with a text prompt (or start the server with "
                                  "--trust-request-chat-template and pass one as "
                                  "chat_template)", "messages") from None
        try:
            if continue_final_message:
                return await self.off_loop(chat.prompt_ids, messages)
            return await self.off_loop(chat.encode, messages, add_generation_prompt)
        except templates.TemplateError as error:
            raise bad_request(str(error), "chat_template" if template is not None
                              else "messages") from None

    def chat_format(self) -> "ChatFormat":
        """The model's chat format: its backend's (`chat_template=`, the embedded Gemma's
        turn format), or for a backend without one, the tokenizer's own template."""
        from ..tokenization.chat import resolve

        own = getattr(self._backend, "chat_format", None)
        return own() if callable(own) else resolve(self.tokenizer, None, self.model_id)

    def _special_text(self, token_id: Optional[int]) -> Optional[str]:
        return None if token_id is None else self.tokenizer.convert_ids_to_tokens([token_id])[0]

    def tokenizer_info(self) -> dict:
        """The tokenizer's configuration as vLLM's `/tokenizer_info` gives it (what
        `tokenizer_config.json` holds, file paths left out), plus the chat template."""
        config = {key: _json_safe(value) for key, value in self.tokenizer.config().items()}
        template = config.pop("chat_template", None)
        for name in ("bos", "eos"):
            if config.get(f"{name}_token") is None:
                config[f"{name}_token"] = self._special_text(
                    getattr(self.tokenizer, f"{name}_token_id"))
        config.setdefault("model_max_length", self.context_length)
        if isinstance(template, str):
            config["chat_template"] = template
        return config

    def check_rows(self, rows: int, what: str) -> None:
        """A 400 if one request asks for more sequences than the server decodes for one
        request (`MAX_N`) or the model decodes at once."""
        from .protocol import MAX_N

        if rows > MAX_N:
            raise bad_request(f"{what} is {rows} sequences; this server decodes at most "
                              f"{MAX_N} for one request: send fewer prompts or a smaller n",
                              "n")
        try:
            self._backend.check_rows(rows, what)
        except ValueError as error:
            raise bad_request(str(error), "n") from None

    # generation ---------------------------------------------------------------------------

    async def generate(self, prompt_ids: list[int], prompt_text: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        """Generate after `prompt_ids`, as `LLM.generate` does after text."""
        self.check_ids(prompt_ids)
        self._check_open()
        self.running += 1
        try:
            return await self._backend.generate_ids(prompt_ids, prompt_text, options, on_token)
        except asyncio.CancelledError:
            if self.closing:
                raise shutting_down() from None
            raise
        except (TypeError, ValueError) as error:  # the request asks what the model cannot do
            raise bad_request(str(error)) from None
        finally:
            self.running -= 1

    def start(self, work: Awaitable[T]) -> "asyncio.Task[T]":
        """Run `work` as a task that `shutdown` can stop."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def shutdown(self) -> None:
        """Refuse new work and end the work in flight: its callers get a 503 (call on the
        event loop)."""
        self.closing = True
        for task in list(self._tasks):
            task.cancel()

    def _check_open(self) -> None:
        if self.closing:
            raise shutting_down()

    # prompt log-probabilities ---------------------------------------------------------

    async def prompt_logprobs(self, prompts: list[list[int]], top: Optional[int],
                              starts: Optional[Sequence[int]] = None) -> list[list[Any]]:
        """Per prompt, per token, a `ScoredToken` (log-probability given the tokens before
        it, rank, the `top` best alternatives; with `top` None the log-probability alone);
        None for the first token, which has none.

        Prompts that share a prefix (a prompt with each of its values, as `score` sends
        them) share its forward pass: each group is one job that scores the prefix's
        tokens and each prompt's rest in one pass (`score_prefix`). The groups of one
        request, and those of requests arriving together, share the model's passes
        (the worker batches them); no prefix cache: a request's numbers must not depend
        on the requests before it.

        With `starts` (the `logprobs_from` extension), prompt i's tokens before
        `starts[i]` get None too, and only the later ones are computed: each group is
        one job of the engine's own scoring, as in-process `score` runs it (the
        vocabulary projected at those positions alone).
        """
        for ids in prompts:
            self.check_ids(ids)
        self._check_open()
        results: list[list[Any]] = [[None] for _ in prompts]
        firsts = [1] * len(prompts) if starts is None else [max(1, s) for s in starts]
        scored = [i for i, ids in enumerate(prompts) if firsts[i] < len(ids)]
        groups = [(shared, [scored[m] for m in members])
                  for shared, members in prefix_groups([prompts[i] for i in scored])]
        if starts is not None:  # the shared part ends before the first token scored
            groups = [(min([shared] + [firsts[i] for i in members]), members)
                      for shared, members in groups]
            results = [[None] * min(first, len(ids)) for first, ids in zip(firsts, prompts)]
        self.running += 1
        try:
            jobs = [self._score_group(shared, [prompts[i] for i in members], top)
                    if starts is None else
                    self._score_from(shared, [prompts[i] for i in members],
                                     [firsts[i] for i in members], top)
                    for shared, members in groups]
            for (_, members), answer in zip(groups, await asyncio.gather(*jobs)):
                for i, values in zip(members, answer):
                    results[i] = results[i][:firsts[i]] + values
        except asyncio.CancelledError:
            if self.closing:
                raise shutting_down() from None
            raise
        finally:
            self.running -= 1
        return results

    async def _score_group(self, shared: int, prompts: list[list[int]],
                           top: Optional[int]) -> list[list[Any]]:
        """Tokens 1.. of prompts whose first `shared` tokens are the same."""
        prefix = prompts[0][:shared]
        suffixes = [ids[shared:] for ids in prompts]
        if top is not None:
            return await self._backend.score_ids_top(prefix, suffixes, top, use_cache=False,
                                                     score_prefix=True)
        plain = await self._backend.score_ids(prefix, suffixes,
                                              [len(ids) - 1 for ids in prompts],
                                              use_cache=False, score_prefix=True)
        return [[ScoredToken(v, None, ()) for v in row] for row in plain]

    async def _score_from(self, shared: int, prompts: list[list[int]], firsts: list[int],
                          top: Optional[int]) -> list[list[Any]]:
        """Tokens `firsts[i]`.. of prompts whose first `shared` tokens (no more than any
        of `firsts`) are the same: the prefix and the values' tokens, as `score` sends
        them to the engine."""
        prefix = prompts[0][:shared]
        suffixes = [ids[shared:] for ids in prompts]
        lengths = [len(ids) - first for ids, first in zip(prompts, firsts)]
        if top is not None:
            rows = await self._backend.score_ids_top(prefix, suffixes, top, use_cache=False)
            return [row[len(row) - n:] for row, n in zip(rows, lengths)]
        plain = await self._backend.score_ids(prefix, suffixes, lengths, use_cache=False)
        return [[ScoredToken(v, None, ()) for v in row] for row in plain]


def prefix_groups(prompts: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
    """The prompts (two tokens or more) as groups that share a prefix, each as (the
    shared length, the prompts' indices): prompts in token order, each joining the group
    before it while that keeps most of the group's shared part and covers at least half
    of the prompt, so that a prompt sent with each of several values is one group and
    unrelated prompts do not cut each other's prefix down to a token or two. Every
    prompt keeps at least one token after the shared part."""
    order = sorted((i for i, ids in enumerate(prompts) if len(ids) > 1),
                   key=lambda i: list(prompts[i]))
    groups: list[tuple[int, list[int]]] = []
    for i in order:
        ids = prompts[i]
        if groups:
            shared, members = groups[-1]
            joint = min(shared, common_prefix_length(prompts[members[0]], ids), len(ids) - 1)
            if joint * len(members) >= shared * (len(members) - 1) and 2 * joint >= len(ids) - 1:
                groups[-1] = (joint, members + [i])
                continue
        groups.append((len(ids) - 1, [i]))
    return groups


def shutting_down() -> APIError:
    return APIError(503, "the server is shutting down; retry against another server or "
                         "once it is back", kind="server_error")


def _json_safe(value: Any) -> Any:
    """A tokenizer config value as JSON (added tokens by their text)."""
    if hasattr(value, "content"):
        return value.content
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
