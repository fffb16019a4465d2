"""The serving layer: validated requests in, response bodies or event streams out.

`prepare_*` does everything that can refuse a request (options, tokenisation, chat
templates, lengths), so a bad request is a 400 before any event is sent. Then one path
serves both answers: `_rows` runs every prompt and yields token events (when streaming)
and each choice's finished `Generation`; the whole-body answer collects the finished
rows, the stream turns each event into a chunk. The routes (`app`) only parse, check the
model and hand over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, AsyncIterator, Callable, Optional, Sequence

from ..core.options import GenerateOptions
from ..core.results import Generation, TokenInfo
from ..tokenization.tokenizer import token_pieces
from . import responses
from .bridge import ServedModel
from .errors import APIError
from .protocol import ChatRequest, CompletionRequest, Prompt, Sampling
from .responses import Position
from .stops import StopScanner

log = logging.getLogger("lmql_nb.server")


@dataclasses.dataclass(frozen=True)
class PreparedPrompt:
    """A prompt as token ids, with its text."""

    ids: list[int]
    text: str


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A generating request, checked and tokenised, ready to run."""

    sampling: Sampling
    options: GenerateOptions
    prompts: list[PreparedPrompt]
    completion: Optional[CompletionRequest] = None  # None for chat

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p.ids) for p in self.prompts)


@dataclasses.dataclass(frozen=True)
class RowEvent:
    """A streamed token of choice `choice`, or (with `generation`) its finished row."""

    choice: int
    token: Optional[TokenInfo] = None
    generation: Optional[Generation] = None


# a stream's chunk for (choice, text, positions, finish reason or None)
ChunkBuilder = Callable[[int, str, Sequence[Position], Optional[str]], dict]


class Serving:
    """Serves completion and chat requests with one `ServedModel`."""

    def __init__(self, model: ServedModel):
        self.model = model

    # preparing ------------------------------------------------------------------------

    async def prepare_completion(self, request: CompletionRequest) -> Prepared:
        options = request.sampling.to_options()
        rows = len(request.prompts) * request.sampling.rows
        self.model.check_rows(rows, f"{len(request.prompts)} prompt(s) x "
                                    f"{request.sampling.rows} sequence(s)")
        prompts = [await self._prompt(p, request.add_special_tokens) for p in request.prompts]
        return Prepared(request.sampling, options, prompts, request)

    async def prepare_chat(self, request: ChatRequest) -> Prepared:
        options = request.sampling.to_options()
        self.model.check_rows(request.sampling.rows, f"{request.sampling.rows} sequence(s)")
        ids = await self.model.chat_prompt(request.messages, request.chat_template,
                                           request.add_generation_prompt)
        self.model.check_ids(ids, "the rendered chat")
        text = await self.model.decode(ids)
        return Prepared(request.sampling, options, [PreparedPrompt(ids, text)])

    async def _prompt(self, prompt: Prompt, add_special_tokens: bool) -> PreparedPrompt:
        if isinstance(prompt, str):
            ids = await self.model.encode(prompt, add_special_tokens)
            self.model.check_ids(ids)
            return PreparedPrompt(ids, prompt)
        self.model.check_ids(prompt)
        return PreparedPrompt(list(prompt), await self.model.decode(prompt))

    # the one path ---------------------------------------------------------------------

    async def _rows(self, prepared: Prepared, stream: bool) -> AsyncIterator[RowEvent]:
        """Run every prompt: yield each streamed token (with `stream`) as it arrives and
        each choice's finished row; raise the first error (the others are cancelled)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        sampling = prepared.sampling
        per_prompt, copies = sampling.n, sampling.copies

        def on_token_for(p: int) -> Optional[Callable[[int, TokenInfo], None]]:
            if not stream:
                return None

            def on_token(index: int, token: TokenInfo) -> None:  # on the model's thread
                loop.call_soon_threadsafe(queue.put_nowait,
                                          ("token", p * per_prompt + index, token))
            return on_token

        async def run(p: int, prompt: PreparedPrompt) -> None:
            try:
                generations = await self.model.generate(prompt.ids, prompt.text,
                                                        prepared.options, on_token_for(p))
                queue.put_nowait(("done", p, generations * copies))
            except BaseException as error:  # reported to the consumer: nobody awaits this
                queue.put_nowait(("error", p, error))
                if isinstance(error, asyncio.CancelledError):
                    raise

        tasks = [self.model.start(run(p, prompt)) for p, prompt in enumerate(prepared.prompts)]
        pending = len(tasks)
        try:
            while pending:
                kind, index, payload = await queue.get()
                if kind == "token":
                    for copy in range(copies):
                        yield RowEvent(index + copy, token=payload)
                elif kind == "error":
                    raise payload
                else:
                    pending -= 1
                    for row, generation in enumerate(payload):
                        yield RowEvent(index * per_prompt + row, generation=generation)
        finally:
            for task in tasks:
                task.cancel()

    # completions ----------------------------------------------------------------------

    async def completion(self, prepared: Prepared) -> dict:
        """The whole `/v1/completions` response body."""
        request = prepared.completion
        assert request is not None
        scoring = (self.model.start(self.model.prompt_logprobs(
            [p.ids for p in prepared.prompts], request.prompt_top, request.logprobs_from))
                   if request.wants_prompt_scores else None)
        finished: dict[int, Generation] = {}
        try:
            async for event in self._rows(prepared, stream=False):
                assert event.generation is not None
                finished[event.choice] = event.generation
            scores = await scoring if scoring is not None else None
        finally:
            if scoring is not None:
                scoring.cancel()
        k = prepared.sampling.logprobs
        choices, completion_tokens = [], 0
        for choice in sorted(finished):
            generation = finished[choice]
            p = choice // prepared.sampling.n
            prompt = prepared.prompts[p]
            positions = responses.generated_positions(generation, self.model.token_text)
            completion_tokens += responses.generated_count(generation)
            prompt_positions = (self._prompt_positions(prompt, scores[p])
                                if scores is not None else [])
            logprobs = None
            if k is not None:
                builder = responses.CompletionLogprobs(k, request.tokens_as_ids,
                                                       details=prepared.sampling.token_details)
                if request.echo:
                    builder.add(prompt_positions)
                logprobs = builder.add(positions).body
            body = responses.completion_choice(
                choice, (prompt.text if request.echo else "") + generation.text, generation,
                logprobs)
            if request.prompt_logprobs is not None:
                body["prompt_logprobs"] = responses.prompt_logprobs_entries(
                    [dataclasses.replace(pos, top=pos.top[:request.prompt_logprobs])
                     for pos in prompt_positions])
                body["prompt_token_ids"] = prompt.ids
            if request.token_ids:  # as vLLM: the ids of the prompt and of what was generated
                body["prompt_token_ids"] = prompt.ids
                body["token_ids"] = [t.token_id for t in generation.tokens] + (
                    [generation.end_token.token_id] if generation.end_token is not None else [])
            choices.append(body)
        return responses.completion_body(responses.new_id("cmpl"), self.model.name, choices,
                                         responses.usage(prepared.prompt_tokens,
                                                         completion_tokens))

    def _prompt_positions(self, prompt: PreparedPrompt, scored: list[Any]) -> list[Position]:
        """A prompt's tokens as positions: each token as it reads in the prompt, its
        alternatives as they read alone."""
        pieces = token_pieces(self.model.tokenizer, [], prompt.ids)
        positions = []
        for token_id, piece, score in zip(prompt.ids, pieces, scored):
            if score is None:
                positions.append(Position(token_id, piece, None))
                continue
            top = tuple((i, piece if i == token_id else self.model.token_text(i), logprob)
                        for i, logprob in score.top)
            positions.append(Position(token_id, piece, score.logprob, top, score.rank))
        return positions

    def completion_stream(self, prepared: Prepared) -> AsyncIterator[str]:
        """The `/v1/completions` event stream."""
        request_id = responses.new_id("cmpl")
        request = prepared.completion
        assert request is not None
        k = prepared.sampling.logprobs
        sent = [0] * (len(prepared.prompts) * prepared.sampling.n)  # text offsets

        def chunk(choice: int, text: str, positions: Sequence[Position],
                  finish: Optional[str]) -> dict:
            logprobs = None
            if k is not None:
                logprobs = responses.CompletionLogprobs(
                    k, request.tokens_as_ids, sent[choice],
                    prepared.sampling.token_details).add(positions).body
            sent[choice] += len(text)
            return responses.completion_chunk(request_id, self.model.name, choice, text,
                                              logprobs, finish)

        return self._stream(prepared, chunk, request_id, "text_completion")

    async def _stream(self, prepared: Prepared, chunk: ChunkBuilder, request_id: str,
                      kind: str, first: Sequence[str] = ()) -> AsyncIterator[str]:
        """Events for a stream: `first`, a chunk per token (text held back at a possible
        stop string), each choice's final chunk, the usage if asked, then [DONE]."""
        sampling = prepared.sampling
        scanners = [StopScanner(sampling.stop, sampling.keep_stop, sampling.min_tokens)
                    for _ in range(len(prepared.prompts) * sampling.n)]
        completion_tokens = 0
        for opening in first:
            yield opening
        try:
            async for event in self._rows(prepared, stream=True):
                scanner = scanners[event.choice]
                if event.token is not None:
                    if scanner.cut is None:
                        text = scanner.feed(event.token.text)
                        yield responses.sse(chunk(event.choice, text,
                                                  [responses.token_position(event.token)], None))
                    continue
                generation = event.generation
                assert generation is not None
                completion_tokens += responses.generated_count(generation)
                end = [] if generation.end_token is None else [
                    responses.end_position(generation.end_token, self.model.token_text)]
                yield responses.sse(chunk(event.choice, scanner.flush(), end,
                                          responses.finish_reason(generation)))
        except APIError as error:
            yield responses.sse(responses.error_event(error.message, error.status, error.kind))
            return
        except Exception as error:  # the engine failed (or a bug): say what, no traceback
            log.error("stream failed", exc_info=error)
            yield responses.sse(responses.error_event(
                f"internal server error: {type(error).__name__}: {error}"))
            return
        if sampling.include_usage:
            yield responses.sse(responses.usage_chunk(
                request_id, self.model.name, kind,
                responses.usage(prepared.prompt_tokens, completion_tokens)))
        yield responses.SSE_DONE

    # chat -----------------------------------------------------------------------------

    async def chat(self, prepared: Prepared) -> dict:
        """The whole `/v1/chat/completions` response body."""
        k = prepared.sampling.logprobs
        finished: dict[int, Generation] = {}
        async for event in self._rows(prepared, stream=False):
            assert event.generation is not None
            finished[event.choice] = event.generation
        choices = [responses.chat_choice(
            choice, finished[choice],
            responses.chat_logprobs(responses.generated_positions(finished[choice],
                                                                  self.model.token_text), k,
                                    prepared.sampling.token_details))
            for choice in sorted(finished)]
        completion_tokens = sum(responses.generated_count(g) for g in finished.values())
        return responses.chat_body(responses.new_id("chatcmpl"), self.model.name, choices,
                                   responses.usage(prepared.prompt_tokens, completion_tokens))

    def chat_stream(self, prepared: Prepared) -> AsyncIterator[str]:
        """The `/v1/chat/completions` event stream: a role chunk per choice first."""
        request_id = responses.new_id("chatcmpl")
        k = prepared.sampling.logprobs
        model = self.model.name

        def chunk(choice: int, text: str, positions: Sequence[Position],
                  finish: Optional[str]) -> dict:
            # a choice's final chunk carries the text a possible stop string held back
            logprobs = (responses.chat_logprobs(positions, k, prepared.sampling.token_details)
                        if positions else None)
            return responses.chat_chunk(request_id, model, choice,
                                        responses.chat_delta(text, finish is not None),
                                        logprobs, finish)

        roles = [responses.sse(responses.chat_chunk(request_id, model, index,
                                                    {"role": "assistant", "content": ""},
                                                    None, None))
                 for index in range(prepared.sampling.n)]
        return self._stream(prepared, chunk, request_id, "chat.completion.chunk", roles)

