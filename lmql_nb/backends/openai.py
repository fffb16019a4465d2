"""The client backend: OpenAI, Azure OpenAI and OpenAI-compatible servers over HTTP.

    lmql_nb.model("openai/gpt-4o-mini")                        # key from $OPENAI_API_KEY
    lmql_nb.model("openai/NAME", base_url="http://127.0.0.1:8080/v1")   # lmql_nb serve, vLLM
    lmql_nb.model("NAME", endpoint="127.0.0.1:8080")           # the same, shorter

Built on the official `openai` package's async client (one client per event loop, since
a client is bound to the loop it first ran on).

- Generation: completion models use `/v1/completions` with the prompt as is; chat
  models use `/v1/chat/completions` with the prompt as the single user message. Per-token
  log-probabilities and top-k alternatives come back as `TokenInfo`s where the server
  gives them (token ids are not part of OpenAI's format: they are -1, entropy is None).
- Scoring is exact where the server returns prompt log-probabilities for token-id
  prompts (`echo` with `max_tokens=0`: vLLM, `python -m lmql_nb serve`). The prompt/value
  boundary is computed here, from the server's `/tokenize`. Elsewhere scoring raises
  `ScoringNotSupported` naming what would work; `scoring="first-token-approximation"`
  opts into an approximation from the first token's top-20 log-probabilities, labelled in
  a warning and in the token texts ("≈...").
- Retries with exponential backoff on 429, 5xx, timeouts and dropped connections
  (honouring `Retry-After`), a bounded number of concurrent requests per event loop, and
  cancellation that closes the HTTP request.
- The API key is never shown: not in reprs, log lines or error messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import importlib.util
import logging
import os
import random
import re
import threading
import time
import urllib.parse
import warnings
import weakref
from typing import Any, Awaitable, Callable, Optional, Sequence

from ..errors import ApproximateScoreWarning, OpenAIBackendError, ScoringNotSupported
from ..options import GenerateOptions, ScoreOptions
from ..results import Alternative, Generation, TokenCallback, TokenInfo, ValueScores
from ..tokenizer import common_prefix_length
from ..validation import Options, option
from .base import Backend

log = logging.getLogger(__name__)

OFFICIAL_URL = "https://api.openai.com/v1"
#: OpenAI's legacy completion models (everything else official is a chat model)
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
SCORING_MODES = ("exact", "first-token-approximation")
OFFICIAL_COMPLETIONS_MAX_LOGPROBS = 5
UNKNOWN_TOKEN_ID = -1


class _Secret:
    """A value that never shows itself in a repr or a string."""

    __slots__ = ("_value",)

    def __init__(self, value: Optional[str]):
        self._value = value

    def reveal(self) -> Optional[str]:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<hidden>" if self._value else "None"

    __str__ = __repr__


def _without_credentials(url: Optional[str]) -> Optional[str]:
    """`url` without a user:password part."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclasses.dataclass(frozen=True)
class _Capabilities:
    """What the server was found to offer (probed once)."""

    tokenize: bool
    context_length: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class OpenAIOptions(Options):
    """The options of `openai/` models and of models at an `endpoint=`."""

    api_key: Optional[str] = option(
        None, "the key (default `$OPENAI_API_KEY`; Azure: `$AZURE_OPENAI_API_KEY`); never "
        "shown in reprs, logs or errors", "str", optional=True, allow_empty=True, secret=True)
    base_url: Optional[str] = option(
        None, "API root of an OpenAI-compatible server, e.g. \"http://127.0.0.1:8080/v1\" "
        "(default `$OPENAI_BASE_URL`, else OpenAI's)", "str", optional=True, allow_empty=True)
    organization: Optional[str] = option(None, "OpenAI account option", "str", optional=True)
    project: Optional[str] = option(None, "OpenAI account option", "str", optional=True)
    azure_endpoint: Optional[str] = option(
        None, "selects Azure OpenAI (default `$AZURE_OPENAI_ENDPOINT`); the model name is "
        "the deployment", "str", optional=True, allow_empty=True)
    api_version: Optional[str] = option(None, "Azure OpenAI's API version (default "
                                        "`$OPENAI_API_VERSION`)", "str", optional=True)
    azure_deployment: Optional[str] = option(None, "Azure deployment, if not the model "
                                             "name", "str", optional=True)
    azure_ad_token: Optional[str] = option(None, "Azure AD token (never shown)", "str",
                                           optional=True, secret=True)
    chat: Optional[bool] = option(
        None, "`/v1/chat/completions` (True) or `/v1/completions` (False); default: chat "
        "for OpenAI's and Azure's chat models, completions for every other server", "bool",
        optional=True)
    stop: Optional[tuple[str, ...]] = option(
        None, "stop strings for every call (per call: `stops_before=` / `stops_at=`)",
        "strings", optional=True)
    scoring: str = option("exact", "\"first-token-approximation\" opts into a labelled "
                          "approximation where exact scoring is impossible", "choice",
                          choices=SCORING_MODES)
    timeout: float = option(120.0, "seconds a request may take", "number", minimum=1e-3,
                            unit="of seconds")
    max_retries: int = option(4, "retries after a 429, 5xx, timeout or dropped connection, "
                              "with exponential backoff", "int", minimum=0)
    retry_max_wait: float = option(60.0, "the longest `Retry-After` honoured; longer means "
                                   "fail now", "number", minimum=0, unit="of seconds")
    max_concurrency: int = option(8, "requests in flight at once per event loop", "int",
                                  minimum=1)


def create(model_id: str, name: str, options: OpenAIOptions) -> "OpenAIBackend":
    """The backend for `openai/<name>`."""
    return OpenAIBackend(model_id, name, options)


def create_at_endpoint(model_id: str, endpoint: str, options: OpenAIOptions,
                       connect: Optional[Callable[[], dict]] = None) -> "OpenAIBackend":
    """The backend for `model(model_id, endpoint=...)`: "host:port" or a URL (a server
    with the key `$LMQL_NB_API_KEY`), or a named endpoint whose `connect()` says where the
    server is on first use."""
    from ..endpoints import API_KEY_ENV, endpoint_url

    if options.base_url is not None:
        raise ValueError("pass either endpoint= or base_url=, not both")
    if connect is not None:
        return OpenAIBackend(model_id, model_id, options, connect=connect)
    name = model_id[len("openai/"):] if model_id.startswith("openai/") else model_id
    if options.api_key is None:
        options = dataclasses.replace(options, api_key=os.environ.get(API_KEY_ENV))
    options = dataclasses.replace(options, base_url=endpoint_url(endpoint))
    return OpenAIBackend(model_id, name, options, key_env=API_KEY_ENV)


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API (options: `OpenAIOptions`)."""

    kind = "openai"

    def __init__(self, model_id: str, model: str, options: OpenAIOptions = OpenAIOptions(), *,
                 key_env: str = "OPENAI_API_KEY",
                 connect: Optional[Callable[[], dict]] = None):
        if not isinstance(model, str) or not model:
            raise ValueError(f"{model_id!r}: name a model after 'openai/', e.g. "
                             "'openai/gpt-4o-mini'")
        if importlib.util.find_spec("openai") is None:
            raise ImportError(f"{model_id!r} needs the 'openai' package: "
                              "pip install 'lmql_nb[openai]'")
        api_key, base_url, azure_endpoint = options.api_key, options.base_url, \
            options.azure_endpoint
        api_version, chat = options.api_version, options.chat
        self.model_id = model_id
        self.model = model
        self.azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        self.azure = self.azure_endpoint is not None
        if self.azure:
            key_env = "AZURE_OPENAI_API_KEY"
        self._api_key = _Secret(api_key if api_key is not None else os.environ.get(key_env))
        self._azure_ad_token = _Secret(options.azure_ad_token)
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or None) if not self.azure \
            else base_url
        self.organization = options.organization
        self.project = options.project
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION")
        self.azure_deployment = options.azure_deployment
        # `connect()` (the Jupyter extension) says where the server is, on first use
        self._connect = connect
        self.official = connect is None and (self.azure or _is_official(self.base_url))
        if self.official and not (self._api_key or self._azure_ad_token):
            raise ValueError(f"{model_id!r} needs an API key: pass api_key=... or set "
                             f"${key_env}")
        if self.azure and not self.api_version:
            raise ValueError("Azure OpenAI needs an api_version (or $OPENAI_API_VERSION), "
                             "e.g. api_version='2024-10-21'")
        self.chat = chat if chat is not None else (self.official and not _is_completion_model(model))
        self.stop = options.stop or ()
        self.scoring = options.scoring
        self.timeout = options.timeout
        self.max_retries = options.max_retries
        self.retry_max_wait = options.retry_max_wait
        self.max_concurrency = options.max_concurrency
        self._clients: "weakref.WeakKeyDictionary[Any, tuple[Any, Any]]" = \
            weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._capabilities: Optional[_Capabilities] = None
        self._tokenizer: Optional[RemoteTokenizer] = None

    # identity -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where requests go (never with credentials)."""
        if self.azure:
            return _without_credentials(self.azure_endpoint) or ""
        return _without_credentials(self.base_url) or OFFICIAL_URL

    def __repr__(self) -> str:
        return (f"OpenAIBackend({self.model!r}, url={self.url!r}, "
                f"endpoint={'chat' if self.chat else 'completions'!r})")

    def identity(self) -> str:
        return f"openai:{self.url}:{self.model}:{'chat' if self.chat else 'completions'}"

    def _redact(self, text: str) -> str:
        for secret in (self._api_key.reveal(), self._azure_ad_token.reveal()):
            if secret:
                text = text.replace(secret, "<hidden>")
        return text

    # clients --------------------------------------------------------------------------

    def _client_options(self) -> dict:
        import openai

        timeout = openai.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        options: dict = {"max_retries": 0, "timeout": timeout}
        if self.organization:
            options["organization"] = self.organization
        if self.project:
            options["project"] = self.project
        if self.azure:
            options.update(azure_endpoint=self.azure_endpoint, api_version=self.api_version)
            if self.azure_deployment:
                options["azure_deployment"] = self.azure_deployment
            if self._azure_ad_token:
                options["azure_ad_token"] = self._azure_ad_token.reveal()
            if self._api_key:
                options["api_key"] = self._api_key.reveal()
        else:
            options["api_key"] = self._api_key.reveal() or "EMPTY"  # servers without keys
            options["base_url"] = self.base_url or OFFICIAL_URL
        return options

    def _sync_client(self) -> Any:
        import openai

        kind = openai.AzureOpenAI if self.azure else openai.OpenAI
        return kind(**self._client_options())

    def _async_client(self) -> tuple[Any, Any]:
        """This event loop's client and concurrency bound (a client is bound to its loop)."""
        import anyio
        import openai

        loop = _loop_key()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is None:
                kind = openai.AsyncAzureOpenAI if self.azure else openai.AsyncOpenAI
                entry = (kind(**self._client_options()), anyio.Semaphore(self.max_concurrency))
                self._clients[loop] = entry
            return entry

    # requests with retries ------------------------------------------------------------

    def _describe(self, error: BaseException) -> str:
        import openai

        if isinstance(error, openai.APIStatusError):
            message = _server_message(error)
            return f"HTTP {error.status_code}" + (f": {message}" if message else "")
        if isinstance(error, openai.APITimeoutError):
            return f"no answer within {self.timeout:g} s (timeout)"
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__ or error.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            return f"connection failed{detail}"
        return f"{type(error).__name__}: {error}"

    def _failure(self, error: BaseException, attempts: int, note: str = "") -> OpenAIBackendError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return OpenAIBackendError(self._redact(
            f"request to {self.url} (model {self.model!r}) failed{tries}: "
            f"{self._describe(error)}{note}"))

    def _retry_delay(self, error: BaseException, attempt: int) -> tuple[float, bool]:
        """How long to wait before the next attempt; and whether the server said so."""
        after = _retry_after(error)
        if after is not None:
            return after, True
        return min(8.0, 0.5 * 2 ** attempt) * (0.75 + 0.5 * random.random()), False

    async def _request(self, call: Callable[[Any], Awaitable[Any]], slot: bool = True) -> Any:
        """`call(client)` with retries on transient failures; clear errors otherwise.

        With `slot`, the call holds one of the `max_concurrency` slots of this loop.
        """
        import openai

        client, slots = self._async_client()
        attempt = 0
        while True:
            try:
                if not slot:
                    return await call(client)
                async with slots:
                    return await call(client)
            except openai.APIStatusError as error:
                if not _retryable_status(error.status_code):
                    raise self._failure(error, attempt + 1) from None
                failure: BaseException = error
            except (openai.APITimeoutError, openai.APIConnectionError) as error:
                failure = error
            if attempt >= self.max_retries:
                raise self._failure(failure, attempt + 1) from None
            delay, told = self._retry_delay(failure, attempt)
            if delay > self.retry_max_wait:
                raise self._failure(failure, attempt + 1,
                                    f"; the server asked to retry after {delay:g} s, more "
                                    f"than retry_max_wait={self.retry_max_wait:g} s") from None
            log.warning("%s: %s; retrying in %.1f s%s (attempt %d of %d)", self.url,
                        self._redact(self._describe(failure)), delay,
                        " as the server asked" if told else "", attempt + 2,
                        self.max_retries + 1)
            await _sleep(delay)
            attempt += 1

    # capabilities ---------------------------------------------------------------------

    def load(self) -> None:
        """Check the server once: that it serves the model, and what it offers."""
        self._probe()

    def _probe(self) -> _Capabilities:
        with self._lock:
            if self._capabilities is not None:
                return self._capabilities
            if self._connect is not None:
                info = self._connect()
                self.base_url, self.model = info["base_url"], info["name"]
                self._api_key = _Secret(info.get("api_key"))
                self._connect = None
        if self.official:
            capabilities = _Capabilities(tokenize=False)
        else:
            capabilities = self._probe_server()
        with self._lock:
            self._capabilities = capabilities
        return capabilities

    def _probe_server(self) -> _Capabilities:
        import openai

        client = self._sync_client()
        try:
            try:
                listing = client.models.list()
            except openai.APIStatusError as error:
                raise self._failure(error, 1) from None
            except openai.APIError as error:
                raise self._failure(error, 1, "; is the server running?") from None
            models = tuple(m.id for m in listing.data)
            card = next((m for m in listing.data if m.id == self.model), None)
            if models and card is None:
                raise OpenAIBackendError(f"{self.url} does not serve a model named "
                                         f"{self.model!r}; it serves: {', '.join(models)}")
            context = getattr(card, "max_model_len", None)
            try:
                body = client.post(f"{_root_url(self.base_url)}/tokenize", cast_to=object,
                                   body={"model": self.model, "prompt": "a"})
                tokenize = isinstance(body, dict) and isinstance(body.get("tokens"), list)
            except openai.APIError:
                tokenize = False
            return _Capabilities(tokenize, context if isinstance(context, int) else None)
        finally:
            client.close()

    @property
    def context_length(self) -> Optional[int]:
        return self._capabilities.context_length if self._capabilities else None

    def _vllm_like(self) -> bool:
        """True for servers that speak vLLM's extensions (vLLM, `lmql_nb serve`)."""
        return not self.official and self._probe().tokenize

    def get_tokenizer(self) -> "RemoteTokenizer":
        if not self._probe().tokenize:
            raise OpenAIBackendError(self._no_tokenizer_reason())
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = RemoteTokenizer(self)
            return self._tokenizer

    def _no_tokenizer_reason(self) -> str:
        if self.official:
            return (f"{self.url} offers no tokenizer endpoint: token-level work (exact "
                    "scoring, get_tokenizer) needs a server with /tokenize, such as vLLM or "
                    "`python -m lmql_nb serve`")
        return (f"{self.url} has no /tokenize endpoint (llama.cpp's server, for one, has "
                "none), so lmql_nb cannot tokenise for it; vLLM and `python -m lmql_nb "
                "serve` offer one")

    async def _tokenize(self, text: str, special: bool = True) -> list[int]:
        body = await self._request(lambda client: client.post(
            f"{_root_url(self.base_url)}/tokenize", cast_to=object,
            body={"model": self.model, "prompt": text, "add_special_tokens": special}))
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
            raise OpenAIBackendError(f"{self.url}/tokenize answered without a token list")
        return [int(t) for t in body["tokens"]]

    # generation ------------------------------------------------------------------------

    def _parameters(self, options: GenerateOptions, tokens: bool = True) -> dict:
        """The request body (without prompt/messages) for `options`; `tokens`: ask for
        per-token log-probabilities (details and token callbacks need them)."""
        extra: dict = {}
        params: dict = {"model": self.model, "max_tokens": options.max_tokens}
        if options.decoder == "argmax":
            params["temperature"] = 0.0
        elif options.decoder == "sample":
            params.update(temperature=options.temperature, n=options.n)
            if options.top_p is not None:
                params["top_p"] = options.top_p
            if options.seed is not None:
                params["seed"] = options.seed
            if options.top_k is not None:
                if self.official:
                    raise ValueError("top_k is not supported by OpenAI's API; use top_p")
                extra["top_k"] = options.top_k
        else:  # beam
            if not self._vllm_like():
                raise ValueError(f"decoder='beam' is not supported by {self.url}; beam "
                                 "search needs a vLLM or `lmql_nb serve` server")
            params.update(temperature=0.0, n=options.n)
            extra["use_beam_search"] = True
        if self.chat and self.official:  # OpenAI's newer models accept only this spelling
            maximum = params.pop("max_tokens")
            if maximum is not None:
                params["max_completion_tokens"] = maximum
        spec = getattr(options, "constraint", None)
        stops = list(self.stop)
        if spec is not None:  # the constraints package knows what each server can enforce
            from ..constraints.openai_params import to_server_params

            if spec.stops_at and stops:
                raise ValueError("stops_at cannot be combined with the model's stop option "
                                 "over HTTP (the server keeps all stop strings or none)")
            if not self.official and not self._vllm_like() and (spec.shaped or spec.stops_at):
                raise ValueError(
                    f"{self.url} does not look like vLLM or `lmql_nb serve` (it has no "
                    "/tokenize endpoint), so it would ignore vLLM's structured_outputs and "
                    "include_stop_str_in_output: choices, regex, type, json_schema and "
                    "stops_at are refused here rather than silently unenforced "
                    "(stops_before works)")
            server = to_server_params(spec, "openai" if self.official else "vllm")
            stops += [s for s in server.pop("stop", []) if s not in stops]
            extra.update(server.pop("extra_body", {}))
            if "response_format" in server and not self.chat:
                raise ValueError("json_schema over OpenAI's API needs a chat model "
                                 "(response_format)")
            params.update(server)
        if stops:
            params["stop"] = stops
        k = options.top_logprobs
        if not tokens:
            pass  # plain text was asked for: no per-token data to compute and send
        elif self.chat:
            params.update(logprobs=True, top_logprobs=k)
        else:
            if self.official and k > OFFICIAL_COMPLETIONS_MAX_LOGPROBS:
                raise ValueError(f"OpenAI's completions endpoint returns at most "
                                 f"{OFFICIAL_COMPLETIONS_MAX_LOGPROBS} alternatives per token; "
                                 f"pass top_logprobs <= {OFFICIAL_COMPLETIONS_MAX_LOGPROBS}")
            params["logprobs"] = k
        if extra:
            params["extra_body"] = extra
        return params

    async def generate(self, prompt: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        params = self._parameters(options, tokens=options.return_details or on_token is not None)
        if self.chat:
            params["messages"] = [{"role": "user", "content": prompt}]
        else:
            params["prompt"] = prompt
        generations = await self._generate_once(params, prompt, options, on_token)
        missing = options.n - len(generations)
        if missing > 0 and options.decoder == "sample":
            # a server that ignores n (llama.cpp's does): ask for the rest one at a time
            more = await _gather(*(self._generate_once(
                {**params, "n": 1, **({"seed": options.seed + len(generations) + i}
                                      if options.seed is not None else {})},
                prompt, options, _shifted(on_token, len(generations) + i))
                for i in range(missing)))
            generations += [g for batch in more for g in batch[:1]]
        if len(generations) != options.n:
            raise OpenAIBackendError(f"{self.url} returned {len(generations)} sequences for "
                                     f"n={options.n}")
        return generations

    async def _generate_once(self, params: dict, prompt: str, options: GenerateOptions,
                             on_token: Optional[TokenCallback]) -> list[Generation]:
        body = params if on_token is None else {**params, "stream": True}

        def create(client: Any) -> Awaitable[Any]:
            endpoint = client.chat.completions if self.chat else client.completions
            return endpoint.create(**body)

        if on_token is None:
            response = await self._request(create)
            choices = sorted(response.choices, key=lambda c: c.index)
            return [self._generation(choice, prompt, options.top_logprobs) for choice in choices]
        return await self._stream(create, prompt, options, on_token)

    def _generation(self, choice: Any, prompt: str, k: int) -> Generation:
        if self.chat:
            text = choice.message.content or ""
            entries = (choice.logprobs.content or []) if choice.logprobs else []
            tokens = tuple(_chat_token(entry, k) for entry in entries)
        else:
            text = choice.text or ""
            tokens = _completion_tokens(choice.logprobs, k)
        return Generation(text, tokens, _finish_reason(choice.finish_reason), prompt)

    async def _stream(self, create: Callable, prompt: str, options: GenerateOptions,
                      on_token: TokenCallback) -> list[Generation]:
        _, slots = self._async_client()
        async with slots:  # the slot is held while the stream lasts
            return await self._read_stream(await self._request(create, slot=False), prompt,
                                           options, on_token)

    async def _read_stream(self, stream: Any, prompt: str, options: GenerateOptions,
                           on_token: TokenCallback) -> list[Generation]:
        texts: dict[int, list[str]] = {}
        tokens: dict[int, list[TokenInfo]] = {}
        reasons: dict[int, str] = {}
        k = options.top_logprobs
        in_callback = False
        try:
            async for chunk in stream:
                for choice in chunk.choices:
                    index = choice.index
                    texts.setdefault(index, [])
                    tokens.setdefault(index, [])
                    if self.chat:
                        piece = choice.delta.content if choice.delta else None
                        new = [_chat_token(e, k) for e in
                               ((choice.logprobs.content or []) if choice.logprobs else [])]
                    else:
                        piece = choice.text
                        new = list(_completion_tokens(choice.logprobs, k))
                    texts[index].append(piece or "")
                    for token in new:
                        tokens[index].append(token)
                        in_callback = True
                        on_token(index, token)
                        in_callback = False
                    if choice.finish_reason:
                        reasons[index] = _finish_reason(choice.finish_reason)
        except Exception as error:  # the connection broke (or the server sent nonsense)
            if in_callback:  # the caller's on_token failed: its error, unchanged
                raise
            received = sum(len(t) for t in tokens.values())
            raise OpenAIBackendError(self._redact(
                f"the stream from {self.url} (model {self.model!r}) broke off after "
                f"{received} tokens: {self._describe(error)}")) from None
        finally:
            await stream.close()
        if not reasons or len(reasons) < len(texts):
            raise OpenAIBackendError(f"the stream from {self.url} (model {self.model!r}) "
                                     "ended before every sequence finished")
        return [Generation("".join(texts[i]), tuple(tokens[i]), reasons[i], prompt)
                for i in sorted(texts)]

    # scoring ---------------------------------------------------------------------------

    async def score(self, prompt: str, values: list[str], options: ScoreOptions) -> list[ValueScores]:
        if self.scoring == "first-token-approximation":
            return await self._approximate_scores(prompt, values)
        self._check_exact_scoring()
        prompt_ids = await self._tokenize(prompt)
        joints = await _gather(*(self._tokenize(prompt + value) for value in values))
        splits = []
        for value, joint in zip(values, joints):
            shared = common_prefix_length(prompt_ids, joint)
            if shared == 0:
                raise ValueError(f"cannot score {value!r} after an empty prompt with this "
                                 "model (its tokenizer adds no start token); pass a prompt")
            splits.append((joint, len(joint) - shared))
        response = await self._request(lambda client: client.completions.create(
            model=self.model, prompt=[joint for joint, _ in splits], max_tokens=0, echo=True,
            logprobs=0, temperature=0.0))
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) != len(values):
            raise OpenAIBackendError(f"{self.url} answered {len(choices)} choices for "
                                     f"{len(values)} prompts")
        results = []
        for (joint, count), choice in zip(splits, choices):
            logprobs = choice.logprobs
            scores = list(logprobs.token_logprobs or []) if logprobs else []
            if len(scores) < len(joint):
                raise ScoringNotSupported(
                    f"{self.url} returned {len(scores)} prompt log-probabilities for a "
                    f"{len(joint)}-token prompt: it does not echo the prompt's "
                    "log-probabilities, so it cannot score exactly. " + self._what_scores())
            # a server may append generated tokens after the prompt's: slice at the prompt's end
            texts = list(logprobs.tokens[len(joint) - count:len(joint)]) \
                if logprobs.tokens else [""] * count
            value_scores = scores[len(joint) - count:len(joint)]
            if any(s is None for s in value_scores):
                raise OpenAIBackendError(f"{self.url} returned no log-probability for some "
                                         "value tokens")
            results.append(ValueScores(joint[len(joint) - count:], texts,
                                       [float(s) for s in value_scores]))
        return results

    def _what_scores(self) -> str:
        return ("Exact scoring works with vLLM (`vllm serve MODEL`) and `python -m lmql_nb "
                "serve`, which return prompt log-probabilities for token-id prompts, and with "
                "local: models; or pass scoring='first-token-approximation' to "
                "lmql_nb.model(...) for a labelled approximation from the first token's "
                "top-20 log-probabilities.")

    def _check_exact_scoring(self) -> None:
        if self.official:
            why = ("OpenAI's chat models return no prompt log-probabilities (there is no echo)"
                   if self.chat else
                   "OpenAI's completions endpoint refuses echo with logprobs for "
                   "gpt-3.5-turbo-instruct, and lmql_nb cannot tokenise for OpenAI's models")
            raise ScoringNotSupported(f"{self.model!r} cannot score exactly: {why}. "
                                      + self._what_scores())
        if self.chat:
            raise ScoringNotSupported(f"{self.model!r} is used through /v1/chat/completions, "
                                      "which returns no prompt log-probabilities; pass "
                                      "chat=False to score through /v1/completions. "
                                      + self._what_scores())
        if not self._probe().tokenize:
            raise ScoringNotSupported(
                f"{self.model!r} cannot score exactly: {self._no_tokenizer_reason()}, so the "
                "prompt/value token boundary cannot be fixed. (llama.cpp's server also takes "
                "max_tokens=0 as 'no limit' and echoes prompt log-probabilities only when "
                "started with --logits_all True.) " + self._what_scores())

    async def _approximate_scores(self, prompt: str, values: list[str]) -> list[ValueScores]:
        """Each value's score: the log-probability of the longest of the first token's
        top-20 candidates that begins the value (an upper bound where none does)."""
        warnings.warn(
            f"{self.model!r}: scores are a first-token approximation (the log-probability of "
            "the first token of each value, from the top-20 candidates), not exact "
            "log-probabilities of the values", ApproximateScoreWarning, stacklevel=3)
        k = 20 if self.chat or not self.official else OFFICIAL_COMPLETIONS_MAX_LOGPROBS
        if self.chat:
            response = await self._request(lambda client: client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], max_tokens=1,
                temperature=0.0, logprobs=True, top_logprobs=k))
            entries = response.choices[0].logprobs.content if response.choices[0].logprobs else []
            candidates = {a.token: a.logprob for a in (entries[0].top_logprobs if entries else [])}
        else:
            response = await self._request(lambda client: client.completions.create(
                model=self.model, prompt=prompt, max_tokens=1, temperature=0.0, logprobs=k))
            logprobs = response.choices[0].logprobs
            candidates = dict((logprobs.top_logprobs or [{}])[0] or {}) if logprobs else {}
        if not candidates:
            raise OpenAIBackendError(f"{self.url} returned no first-token log-probabilities "
                                     "to approximate scores with")
        floor = min(candidates.values())
        results = []
        for value in values:
            matches = [t for t in candidates if t and value.startswith(t)]
            if matches:
                token = max(matches, key=len)
                results.append(ValueScores([UNKNOWN_TOKEN_ID], [f"≈{token}"],
                                           [float(candidates[token])]))
            else:  # not among the candidates: its log-probability is at most the lowest
                results.append(ValueScores([UNKNOWN_TOKEN_ID], [f"≈{value}(not in top {k})"],
                                           [float(floor)]))
        return results


class RemoteTokenizer:
    """A `Tokenizer` over a server's `/tokenize` and `/detokenize` (vLLM's endpoints).

    Each call is one HTTP request; special-token ids (BOS/EOS) and the vocabulary size are
    not part of that API and are None / -1.
    """

    vocab_size: int = -1
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    start_token_id: Optional[int] = None

    def __init__(self, backend: OpenAIBackend):
        self._backend = backend

    def __repr__(self) -> str:
        return f"RemoteTokenizer({self._backend.model!r} at {self._backend.url!r})"

    def _post(self, path: str, body: dict) -> dict:
        import openai

        client = self._backend._sync_client()
        try:
            return client.post(f"{_root_url(self._backend.base_url)}{path}", cast_to=object,
                               body={"model": self._backend.model, **body})
        except openai.APIError as error:
            raise self._backend._failure(error, 1) from None
        finally:
            client.close()

    def encode(self, text: str) -> list[int]:
        return list(self._post("/tokenize", {"prompt": text, "add_special_tokens": False})["tokens"])

    def encode_prompt(self, text: str) -> list[int]:
        return list(self._post("/tokenize", {"prompt": text, "add_special_tokens": True})["tokens"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._post("/detokenize", {"tokens": list(ids)})["prompt"])

    def tokenize(self, text: str) -> list[str]:
        ids = self.encode(text)
        return [self.decode([token_id]) for token_id in ids]


# helpers ----------------------------------------------------------------------------------

def _loop_key() -> Any:
    """What identifies the running event loop (asyncio's loop, or trio's run)."""
    import sniffio

    library = sniffio.current_async_library()
    if library == "asyncio":
        return asyncio.get_running_loop()
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    raise RuntimeError(f"the openai backend runs on asyncio or trio, not {library}")


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


async def _gather(*awaitables: Awaitable[Any]) -> list:
    """Await all, concurrently, on asyncio or trio; results in order."""
    import anyio

    results: list = [None] * len(awaitables)

    async def run(index: int, awaitable: Awaitable[Any]) -> None:
        results[index] = await awaitable

    try:
        async with anyio.create_task_group() as group:
            for index, awaitable in enumerate(awaitables):
                group.start_soon(run, index, awaitable)
    except Exception as error:  # an exception group: raise the first failure itself
        inner = getattr(error, "exceptions", None)
        if inner:
            raise inner[0] from None
        raise
    return results


def _shifted(on_token: Optional[TokenCallback], offset: int) -> Optional[TokenCallback]:
    """`on_token` for a sequence requested on its own, reporting its index in the call."""
    if on_token is None:
        return None
    return lambda index, token: on_token(index + offset, token)


def _is_official(base_url: Optional[str]) -> bool:
    if not base_url:
        return True
    host = urllib.parse.urlsplit(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


def _is_completion_model(model: str) -> bool:
    return model.startswith(COMPLETION_MODELS)


def _root_url(base_url: Optional[str]) -> str:
    """The server root (vLLM's /tokenize lives beside /v1, not under it)."""
    url = (base_url or OFFICIAL_URL).rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(error: BaseException) -> Optional[float]:
    """Seconds from a `Retry-After` (or `retry-after-ms`) header, if the server sent one."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _server_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return str(getattr(error, "message", "") or "")


def _finish_reason(reason: Optional[str]) -> str:
    return reason or "stop"


def _rank(logprob: float, alternatives: Sequence[Alternative]) -> Optional[int]:
    """The chosen token's rank, when it is among the alternatives (else unknown)."""
    if any(a.logprob == logprob for a in alternatives):
        return 1 + sum(1 for a in alternatives if a.logprob > logprob)
    return None


_TOKEN_ID = re.compile(r"token_id:(\d+)")


def _token_id(label: str) -> int:
    match = _TOKEN_ID.fullmatch(label)
    return int(match.group(1)) if match else UNKNOWN_TOKEN_ID


def _completion_tokens(logprobs: Any, k: int) -> tuple[TokenInfo, ...]:
    """`TokenInfo`s from a completion choice's `logprobs` (tokens, token_logprobs, top)."""
    if logprobs is None or not logprobs.tokens:
        return ()
    tops = logprobs.top_logprobs or [None] * len(logprobs.tokens)
    result = []
    for label, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs, tops):
        alternatives = tuple(sorted((Alternative(_token_id(t), t, float(v))
                                     for t, v in (top or {}).items()),
                                    key=lambda a: -a.logprob))[:k]
        value = float(logprob) if logprob is not None else float("nan")
        result.append(TokenInfo(_token_id(label), label, value,
                                _rank(value, alternatives) if k else None, None, alternatives))
    return tuple(result)


def _chat_token(entry: Any, k: int) -> TokenInfo:
    alternatives = tuple(Alternative(UNKNOWN_TOKEN_ID, a.token, float(a.logprob))
                         for a in (entry.top_logprobs or [])[:k])
    logprob = float(entry.logprob)
    return TokenInfo(UNKNOWN_TOKEN_ID, entry.token, logprob,
                     _rank(logprob, alternatives) if k else None, None, alternatives)
