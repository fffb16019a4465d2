"""The HTTP routes: a Starlette app over one `ServedModel`.

Every route but `/health` requires the API key when the server has one (compared in
constant time). Errors are JSON in OpenAI's shape: 400 for bad input (with a message
naming what is accepted), 401 for a wrong key, 404 for an unknown model or route.
A client that disconnects cancels its request in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..results import Generation, TokenInfo
from ..tokenizer import token_pieces
from . import protocol, responses, structured
from .bridge import ServedModel
from .errors import APIError, bad_request, not_found, unauthorized
from .stops import StopScanner

log = logging.getLogger("lmql_nb.server")

Handler = Callable[[Request], Awaitable[Response]]


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def _error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def _authorized(request: Request, api_key: Optional[str]) -> bool:
    if api_key is None:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = request.headers.get("api-key", "")  # Azure's spelling
    return hmac.compare_digest(given.strip().encode(), api_key.encode())


def _endpoint(handler: Handler, api_key: Optional[str], protected: bool = True) -> Handler:
    """Wrap a route: authentication, JSON errors, and no stack traces to the client."""

    async def endpoint(request: Request) -> Response:
        if protected and not _authorized(request, api_key):
            return _error_response(unauthorized())
        try:
            return await handler(request)
        except APIError as error:
            return _error_response(error)
        except ClientGone:
            return Response(status_code=499)
        except ValueError as error:  # the engine's checks on input (rows, constraints)
            return _error_response(bad_request(str(error)))
        except Exception as error:  # the engine failed (or a bug): say what, no traceback
            log.exception("request failed")
            return _error_response(APIError(500, f"internal server error: "
                                                 f"{type(error).__name__}: {error}",
                                            kind="server_error"))

    return endpoint


async def _json(request: Request) -> Any:
    try:
        body = json.loads(await request.body())
        # JSON's \ud800 escapes can carry unpaired surrogates, which no tokenizer takes
        json.dumps(body, ensure_ascii=False).encode("utf-8")
        return body
    except UnicodeEncodeError:
        raise bad_request("the request body holds an unpaired surrogate (a \\ud800-\\udfff "
                          "escape without its pair); text must be valid Unicode") from None
    except ValueError:
        raise bad_request("the request body is not valid JSON") from None


async def _until_disconnect(request: Request, work: Awaitable) -> Any:
    """Await `work`; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        raise ClientGone()
    return task.result()


class Routes:
    """The route handlers, sharing one model."""

    def __init__(self, model: ServedModel):
        self.model = model

    def _check_model(self, name: str) -> None:
        if name != self.model.name:
            raise not_found(f"the model {name!r} does not exist; this server serves "
                            f"{self.model.name!r} (see /v1/models)", "model")

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.model.name,
                             "running": self.model.running})

    def _model_card(self) -> dict:
        return {"id": self.model.name, "object": "model", "created": 0, "owned_by": "lmql_nb",
                "root": self.model.llm.model_identifier,
                "max_model_len": self.model.context_length}

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_card()]})

    async def model_info(self, request: Request) -> Response:
        self._check_model(request.path_params["name"])
        return JSONResponse(self._model_card())

    async def tokenize(self, request: Request) -> Response:
        parsed = protocol.parse_tokenize(await _json(request))
        self._check_model(parsed.model)
        ids = self.model.encode(parsed.prompt, parsed.add_special_tokens)
        body: dict = {"count": len(ids), "max_model_len": self.model.context_length,
                      "tokens": ids}
        if parsed.return_token_strs:
            body["token_strs"] = self.model.tokenizer.convert_ids_to_tokens(ids)
        return JSONResponse(body)

    async def detokenize(self, request: Request) -> Response:
        name, ids = protocol.parse_detokenize(await _json(request))
        self._check_model(name)
        vocab = self.model.tokenizer.vocab_size
        if not all(0 <= t < vocab for t in ids):
            raise bad_request(f"token ids must be in [0, {vocab})", "tokens")
        return JSONResponse({"prompt": self.model.tokenizer.decode(ids)})

    # generation -----------------------------------------------------------------------

    def _options(self, sampling: protocol.Sampling):
        extra = structured.generate_options(sampling.structured)
        return self.model.options(sampling.max_tokens, **sampling.generate_options(), **extra)

    async def _generate(self, prompt_ids: list[int], prompt_text: str,
                        sampling: protocol.Sampling, options,
                        on_token=None) -> list[Generation]:
        generations = await self.model.generate(prompt_ids, prompt_text, options, on_token)
        return generations * sampling.copies

    def _prompt(self, prompt: protocol.Prompt, add_special_tokens: bool) -> tuple[list[int], str]:
        """Token ids and text of `prompt`, checked (a bad one is a 400 before any work)."""
        if isinstance(prompt, str):
            ids = self.model.encode(prompt, add_special_tokens)
            self.model.check_ids(ids)
            return ids, prompt
        self.model.check_ids(prompt)
        return list(prompt), self.model.tokenizer.decode(prompt)

    async def completions(self, request: Request) -> Response:
        parsed = protocol.parse_completion(await _json(request))
        sampling = parsed.sampling
        self._check_model(sampling.model)
        options = self._options(sampling)
        prompts = [self._prompt(p, parsed.add_special_tokens) for p in parsed.prompts]
        self.model.check_rows(len(prompts) * sampling.rows, f"{len(prompts)} prompt(s) x "
                              f"{sampling.rows} sequence(s)")
        if sampling.stream:
            return _event_stream(self._stream_completion(prompts, sampling, options, parsed))
        want_prompt_scores = parsed.prompt_logprobs is not None or (
            parsed.echo and sampling.logprobs is not None)

        async def work() -> tuple[list[list[Generation]], Optional[list]]:
            generating = asyncio.gather(*(self._generate(ids, text, sampling, options)
                                          for ids, text in prompts))
            if want_prompt_scores:
                return await asyncio.gather(
                    generating, self.model.prompt_logprobs([ids for ids, _ in prompts]))
            return await generating, None

        results, prompt_scores = await _until_disconnect(request, work())
        choices = []
        completion_tokens = 0
        for p, ((ids, text), generations) in enumerate(zip(prompts, results)):
            pieces = token_pieces(self.model.tokenizer, [], ids)
            for j, generation in enumerate(generations):
                completion_tokens += len(generation.tokens)
                choice = {"index": p * len(generations) + j,
                          "text": (text if parsed.echo else "") + generation.text,
                          "logprobs": None, "finish_reason": responses.finish_reason(generation)}
                if sampling.logprobs is not None:
                    builder = responses.CompletionLogprobs(sampling.logprobs, parsed.tokens_as_ids)
                    if parsed.echo:
                        builder.add_prompt(ids, pieces, prompt_scores[p])
                    for token in generation.tokens:
                        builder.add(token)
                    choice["logprobs"] = builder.body
                if parsed.prompt_logprobs is not None:
                    choice["prompt_logprobs"] = responses.prompt_logprobs_entries(
                        ids, pieces, prompt_scores[p])
                    choice["prompt_token_ids"] = ids
                choices.append(choice)
        usage = responses.usage(sum(len(ids) for ids, _ in prompts), completion_tokens)
        return JSONResponse(responses.completion_body(responses.new_id("cmpl"), self.model.name,
                                                      choices, usage))

    async def _stream_completion(self, prompts: list[tuple[list[int], str]],
                                 sampling: protocol.Sampling, options,
                                 parsed: protocol.CompletionRequest) -> AsyncIterator[str]:
        request_id = responses.new_id("cmpl")

        def chunk(index: int, text: str, token: Optional[TokenInfo], finish: Optional[str]) -> dict:
            logprobs = None
            if token is not None and sampling.logprobs is not None:
                builder = responses.CompletionLogprobs(sampling.logprobs, parsed.tokens_as_ids)
                builder.add(token)
                logprobs = builder.body
            return {"id": request_id, "object": "text_completion", "created": 0,
                    "model": self.model.name,
                    "choices": [{"index": index, "text": text, "logprobs": logprobs,
                                 "finish_reason": finish}]}

        async for item in self._stream(prompts, sampling, options, chunk):
            yield item

    async def _stream(self, prompts, sampling: protocol.Sampling, options, chunk) -> AsyncIterator[str]:
        """Run every prompt, yielding an event per token as tokens arrive (held back at a
        possible stop string), then each row's final event, then usage and [DONE]."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        per_prompt = sampling.n
        scanners = [StopScanner(sampling.stop, sampling.keep_stop)
                    for _ in range(len(prompts) * per_prompt)]

        def on_token_for(p: int):
            def on_token(index: int, token: TokenInfo) -> None:  # on the model's thread
                loop.call_soon_threadsafe(queue.put_nowait, ("token", p * per_prompt + index, token))
            return on_token

        async def run(p: int, ids: list[int], text: str) -> None:
            try:
                generations = await self._generate(ids, text, sampling, options, on_token_for(p))
                queue.put_nowait(("done", p, generations))
            except BaseException as error:  # reported in the stream: nobody awaits this task
                queue.put_nowait(("error", p, error))
                if isinstance(error, asyncio.CancelledError):
                    raise

        tasks = [asyncio.ensure_future(run(p, ids, text)) for p, (ids, text) in enumerate(prompts)]
        pending = len(tasks)
        completion_tokens = 0
        try:
            while pending:
                kind, index, payload = await queue.get()
                if kind == "token":
                    for row in range(sampling.copies):
                        scanner = scanners[index + row]
                        if scanner.cut is None:
                            yield responses.sse(chunk(index + row, scanner.feed(payload.text),
                                                      payload, None))
                elif kind == "error":
                    error = payload
                    if not isinstance(error, APIError):
                        log.error("stream failed", exc_info=error)
                    message = error.message if isinstance(error, APIError) else \
                        f"internal server error: {type(error).__name__}: {error}"
                    yield responses.sse({"error": {"message": message, "type": "server_error"}})
                    return
                else:
                    pending -= 1
                    for row, generation in enumerate(payload):
                        completion_tokens += len(generation.tokens)
                        scanner = scanners[index * per_prompt + row]
                        yield responses.sse(chunk(index * per_prompt + row, scanner.flush(), None,
                                                  responses.finish_reason(generation)))
            if sampling.include_usage:
                yield responses.sse({"id": "usage", "object": "text_completion", "created": 0,
                                     "model": self.model.name, "choices": [],
                                     "usage": responses.usage(sum(len(i) for i, _ in prompts),
                                                              completion_tokens)})
            yield responses.SSE_DONE
        finally:
            for task in tasks:
                task.cancel()

    async def chat(self, request: Request) -> Response:
        parsed = protocol.parse_chat(await _json(request))
        sampling = parsed.sampling
        self._check_model(sampling.model)
        options = self._options(sampling)
        ids = self.model.chat_prompt(parsed.messages, parsed.chat_template,
                                     parsed.add_generation_prompt)
        self.model.check_ids(ids)
        text = self.model.tokenizer.decode(ids)
        k = sampling.logprobs
        if sampling.stream:
            request_id = responses.new_id("chatcmpl")

            def chunk(index: int, piece: str, token: Optional[TokenInfo], finish: Optional[str]) -> dict:
                # a row's final chunk carries the text a possible stop string held back
                delta = {"content": piece} if piece or finish is None else {}
                logprobs = ({"content": [responses.chat_logprob_entry(token, k)]}
                            if token is not None and k is not None else None)
                return {"id": request_id, "object": "chat.completion.chunk", "created": 0,
                        "model": self.model.name,
                        "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                     "finish_reason": finish}]}

            async def events() -> AsyncIterator[str]:
                for index in range(sampling.n):
                    yield responses.sse({"id": request_id, "object": "chat.completion.chunk",
                                         "created": 0, "model": self.model.name,
                                         "choices": [{"index": index, "finish_reason": None,
                                                      "delta": {"role": "assistant", "content": ""},
                                                      "logprobs": None}]})
                async for item in self._stream([(ids, text)], sampling, options, chunk):
                    yield item

            return _event_stream(events())
        generations = await _until_disconnect(request, self._generate(ids, text, sampling, options))
        choices = []
        for index, generation in enumerate(generations):
            choices.append({
                "index": index,
                "message": {"role": "assistant", "content": generation.text},
                "logprobs": None if k is None else
                {"content": [responses.chat_logprob_entry(t, k) for t in generation.tokens]},
                "finish_reason": responses.finish_reason(generation)})
        usage = responses.usage(len(ids), sum(len(g.tokens) for g in generations))
        return JSONResponse(responses.chat_body(responses.new_id("chatcmpl"), self.model.name,
                                                choices, usage))


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def create_app(model: ServedModel, api_key: Optional[str] = None) -> Starlette:
    """The ASGI app serving `model` (loaded already), guarded by `api_key` if given."""
    routes = Routes(model)

    def route(path: str, handler: Handler, methods: list[str], protected: bool = True) -> Route:
        return Route(path, _endpoint(handler, api_key, protected), methods=methods)

    async def not_found_handler(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = ("no such route; routes: /v1/models, /v1/completions, /v1/chat/completions, "
                   "/tokenize, /detokenize, /health") if status == 404 else "method not allowed"
        return _error_response(APIError(status, message, kind="not_found_error"))

    return Starlette(routes=[
        route("/health", routes.health, ["GET"], protected=False),
        route("/v1/models", routes.models, ["GET"]),
        route("/v1/models/{name:path}", routes.model_info, ["GET"]),
        route("/v1/completions", routes.completions, ["POST"]),
        route("/v1/chat/completions", routes.chat, ["POST"]),
        route("/tokenize", routes.tokenize, ["POST"]),
        route("/detokenize", routes.detokenize, ["POST"]),
    ], exception_handlers={404: not_found_handler, 405: not_found_handler})
