"""The model behind the HTTP API: an in-process `LLM`, driven by token ids.

An OpenAI-compatible server must accept token-id prompts and return the log-probability
of every prompt token, so it works below `LLM.generate`/`LLM.score`, which take text: on
the in-process backend's token-id API, through the same worker (so concurrent HTTP
requests still share forward passes).
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

from ..llm import LLM
from ..options import GenerateOptions, parse_generate_options
from ..results import Generation, TokenCallback
from ..tokenizer import common_prefix_length, encode_chat
from .errors import bad_request


class ServedModel:
    """One loaded model under the name clients ask for."""

    def __init__(self, llm: LLM, name: str):
        self.llm = llm
        self.name = name
        self.running = 0  # requests in the engine now (reported by /health)

    def load(self) -> None:
        """Load the model now (the server answers only once this is done)."""
        from ..backends.local import InProcessBackend

        backend = self.llm.backend
        if not isinstance(backend, InProcessBackend):
            raise ValueError(f"serve needs a model the in-process engine loads (a 'local:' "
                             f"or 'llama.cpp:' id); {self.llm.model_identifier!r} is served "
                             f"by {backend.kind!r}")
        backend.load()
        self.tokenizer = backend.get_tokenizer()
        self._backend = backend

    @property
    def context_length(self) -> Optional[int]:
        return self._backend.context_length

    # tokens ---------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` (with BOS where the model expects one, by default)."""
        if add_special_tokens:
            return self.tokenizer.encode_prompt(text)
        return self.tokenizer.encode(text)

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

    def chat_prompt(self, messages: list[dict], template: Optional[str],
                    add_generation_prompt: bool) -> list[int]:
        """The token ids of a conversation, through the model's (or the given) chat template."""
        if template is None and not self.tokenizer.has_chat_template:
            raise bad_request("this model has no chat template: pass one as chat_template "
                              "(a Jinja string), or use /v1/completions with a text prompt",
                              "messages")
        try:
            # the template writes its own special tokens; the content is text
            return encode_chat(self.tokenizer, messages, template, add_generation_prompt)
        except Exception as error:  # a broken template is the client's input
            raise bad_request(f"the chat template failed: {error}", "chat_template") from None

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

    def options(self, max_tokens: Optional[int], **kwargs: Any) -> GenerateOptions:
        """Validated engine options; their error messages become 400s."""
        try:
            return parse_generate_options(max_tokens, **kwargs)
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None

    async def generate(self, prompt_ids: list[int], prompt_text: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        """Generate after `prompt_ids`, as `LLM.generate` does after text."""
        self.check_ids(prompt_ids)
        self.running += 1
        try:
            return await self._backend.generate_ids(prompt_ids, prompt_text, options, on_token)
        finally:
            self.running -= 1

    # prompt log-probabilities ---------------------------------------------------------

    async def prompt_logprobs(self, prompts: list[list[int]]) -> list[list[Optional[float]]]:
        """Per prompt, each token's log-probability given the tokens before it.

        The first token has none (None). Prompts that share a prefix share its forward
        pass: one job scores the shared prefix, one batched job the rest of each prompt.
        """
        for ids in prompts:
            self.check_ids(ids)
        results: list[list[Optional[float]]] = [[None] for _ in prompts]
        groups: dict[int, list[int]] = {}
        for i, ids in enumerate(prompts):
            groups.setdefault(ids[0], []).append(i)
        self.running += 1
        try:
            jobs = [self._score_group([prompts[i] for i in members]) for members in groups.values()]
            for members, scored in zip(groups.values(), await asyncio.gather(*jobs)):
                for i, values in zip(members, scored):
                    results[i] = [None] + values
        finally:
            self.running -= 1
        return results

    async def _score_group(self, prompts: list[list[int]]) -> list[list[float]]:
        """Log-probabilities of tokens 1.. of prompts that share their first token."""
        first = prompts[0]
        shared = min(common_prefix_length(first, ids) for ids in prompts)
        shared = min(shared, min(len(ids) for ids in prompts) - 1)  # each keeps a token
        if len(prompts) == 1 or shared <= 1:
            tails = [ids[1:] for ids in prompts]
            return await self._score(first[:1], tails)
        head, tails = await asyncio.gather(
            self._score(first[:1], [first[1:shared]]),
            self._score(first[:shared], [ids[shared:] for ids in prompts]))
        return [head[0] + tail for tail in tails]

    async def _score(self, prefix: list[int], suffixes: list[list[int]]) -> list[list[float]]:
        scored = [i for i, s in enumerate(suffixes) if s]
        results: list[list[float]] = [[] for _ in suffixes]
        if not scored:
            return results
        values = await self._backend.score_ids(prefix, [suffixes[i] for i in scored],
                                               [len(suffixes[i]) for i in scored])
        for i, value_scores in zip(scored, values):
            results[i] = value_scores
        return results
