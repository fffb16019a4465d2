"""The HTTP routes: a Starlette app over one `ServedModel`.

Routes and authentication only: each route parses its body (`body`, `protocol`),
checks the model name and hands the request to the serving layer (`serving`). Every
route but `/health` requires the API key when the server has one (compared in constant
time). Errors are JSON in OpenAI's shape: 400 for bad input (with a message naming what
is accepted), 401 for a wrong key, 404 for an unknown model or route, 413 for a body
above the size limit, 503 while shutting down. A client that disconnects cancels its
request in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import protocol
from .body import DEFAULT_MAX_BODY_BYTES, read_json
from .bridge import ServedModel
from .errors import APIError, bad_request, not_found, unauthorized
from .serving import Serving

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
    """The route handlers: parse, check the model, hand over to the serving layer."""

    def __init__(self, model: ServedModel, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.model = model
        self.serving = Serving(model)
        self.max_body_bytes = max_body_bytes

    async def _json(self, request: Request) -> Any:
        return await read_json(request, self.max_body_bytes)

    def _check_model(self, name: Optional[str]) -> None:
        if name is not None and name != self.model.name:
            raise not_found(f"the model {name!r} does not exist; this server serves "
                            f"{self.model.name!r} (see /v1/models)", "model")

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.model.name,
                             "running": self.model.running})

    def _model_card(self) -> dict:
        return {"id": self.model.name, "object": "model", "created": 0, "owned_by": "lmql_nb",
                "root": self.model.model_id,
                "max_model_len": self.model.context_length}

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_card()]})

    async def model_info(self, request: Request) -> Response:
        self._check_model(request.path_params["name"])
        return JSONResponse(self._model_card())

    async def tokenizer_info(self, request: Request) -> Response:
        return JSONResponse(self.model.tokenizer_info())

    async def tokenize(self, request: Request) -> Response:
        parsed = protocol.parse_tokenize(await self._json(request))
        self._check_model(parsed.model)
        if parsed.messages is not None:  # vLLM's chat form: the chat completions' rendering
            ids = await self.model.chat_prompt(parsed.messages, parsed.chat_template,
                                               parsed.add_generation_prompt,
                                               parsed.continue_final_message)
            start = self.model.tokenizer.start_token_id
            if parsed.add_special_tokens and start is not None:
                ids = [start, *ids]
        else:
            assert parsed.prompt is not None
            ids = await self.model.encode(parsed.prompt, parsed.add_special_tokens)
        body: dict = {"count": len(ids), "max_model_len": self.model.context_length,
                      "tokens": ids}
        if parsed.return_token_strs:
            body["token_strs"] = self.model.tokenizer.convert_ids_to_tokens(ids)
        return JSONResponse(body)

    async def detokenize(self, request: Request) -> Response:
        name, ids = protocol.parse_detokenize(await self._json(request))
        self._check_model(name)
        vocab = self.model.tokenizer.vocab_size
        if not all(0 <= t < vocab for t in ids):
            raise bad_request(f"token ids must be in [0, {vocab})", "tokens")
        return JSONResponse({"prompt": await self.model.decode(ids)})

    async def completions(self, request: Request) -> Response:
        parsed = protocol.parse_completion(await self._json(request))
        self._check_model(parsed.sampling.model)
        prepared = await self.serving.prepare_completion(parsed)
        if parsed.sampling.stream:
            return _event_stream(self.serving.completion_stream(prepared))
        return JSONResponse(await _until_disconnect(request, self.serving.completion(prepared)))

    async def chat(self, request: Request) -> Response:
        parsed = protocol.parse_chat(await self._json(request))
        self._check_model(parsed.sampling.model)
        prepared = await self.serving.prepare_chat(parsed)
        if parsed.sampling.stream:
            return _event_stream(self.serving.chat_stream(prepared))
        return JSONResponse(await _until_disconnect(request, self.serving.chat(prepared)))


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(_paced(events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _paced(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """`events`, giving the loop a turn after each: tokens that queued up while the
    client went away would otherwise be written in one go, before the server learns the
    connection is gone (and asyncio logs "socket.send() raised exception." for each)."""
    async for event in events:
        yield event
        await asyncio.sleep(0)


def create_app(model: ServedModel, api_key: Optional[str] = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The ASGI app serving `model` (loaded already), guarded by `api_key` if given;
    request bodies above `max_body_bytes` are refused with a 413."""
    routes = Routes(model, max_body_bytes)

    def route(path: str, handler: Handler, methods: list[str], protected: bool = True) -> Route:
        return Route(path, _endpoint(handler, api_key, protected), methods=methods)

    async def not_found_handler(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = ("no such route; routes: /v1/models, /v1/completions, /v1/chat/completions, "
                   "/tokenize, /detokenize, /tokenizer_info, /health") if status == 404 \
            else "method not allowed"
        return _error_response(APIError(status, message, kind="not_found_error"))

    return Starlette(routes=[
        route("/health", routes.health, ["GET"], protected=False),
        route("/v1/models", routes.models, ["GET"]),
        route("/v1/models/{name:path}", routes.model_info, ["GET"]),
        route("/v1/completions", routes.completions, ["POST"]),
        route("/v1/chat/completions", routes.chat, ["POST"]),
        route("/tokenize", routes.tokenize, ["POST"]),
        route("/detokenize", routes.detokenize, ["POST"]),
        route("/tokenizer_info", routes.tokenizer_info, ["GET"]),
    ], exception_handlers={404: not_found_handler, 405: not_found_handler})
