"""`OpenAIBackend`: a model behind an OpenAI-compatible HTTP API.

This file decides what to ask; the rest of the package says how: `transport` (clients,
retries, secrets), `dialect` (the request body for OpenAI or vLLM), `parsing` (responses,
streams and scores), `tokenizer` (the server's /tokenize). Work on token ids (a prompt
given as ids, many prompts scored in one bounded stream of requests) belongs here too: a
vLLM-style server takes `prompt=[ids]` on /v1/completions (see `_exact_scores`), and
`transport.request` bounds requests in flight per event loop.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import threading
import warnings
from typing import Any, Awaitable, Callable, Optional, Sequence

from ...core.aio import gather, run_in_thread, wait
from ...errors import ApproximateScoreWarning, BackendError, ScoringNotSupported
from ...core.options import GenerateOptions, ScoreOptions
from ...core.results import Generation, TokenCallback, TokenInfo, ValueScores
from ...tokenization.chat import template_source
from ...tokenization.tokenizer import common_prefix_length
from ..base import Backend
from . import dialect, parsing, premask
from .batching import RowBatcher
from .options import OpenAIOptions
from .tokenizer import RemoteTokenizer
from .transport import Secret, Transport, is_official

#: OpenAI's legacy completion models (everything else official is a chat model)
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
#: servers (by /v1/models' owned_by) that return token ids with `return_token_ids`
TOKEN_IDS = ("vllm", "lmql_nb")
#: servers (by owned_by) that take `logprobs_from` (compute an echo's log-probabilities
#: from that token on): `lmql_nb serve` only, vLLM and OpenAI do not know it
LOGPROBS_FROM = ("lmql_nb",)
#: the assistant's message `score_chat` renders to find the template's end-of-turn token
CHAT_PROBE = "Yes"
#: how many first-token candidates the approximation reads (OpenAI's chat maximum)
APPROXIMATION_CANDIDATES = 20


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the server was found to offer (probed once)."""

    tokenize: bool
    context_length: Optional[int] = None
    owner: str = ""  # /v1/models' `owned_by`: "vllm", "lmql_nb", ...


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
    """A model behind an OpenAI-compatible HTTP API (options: `OpenAIOptions`).

    Completion models use `/v1/completions` with the prompt as is; chat models use
    `/v1/chat/completions` with the prompt as the single user message. Scoring is exact
    where the server returns prompt log-probabilities for token-id prompts (`echo` with
    `max_tokens=0`: vLLM, `python -m lmql_nb serve`), the prompt/value boundary computed
    here from the server's `/tokenize`; elsewhere it raises `ScoringNotSupported` naming
    what would work, unless `scoring="first-token-approximation"` opts into a labelled
    approximation.
    """

    kind = "openai"

    def __init__(self, model_id: str, model: str, options: Optional[OpenAIOptions] = None, *,
                 key_env: str = "OPENAI_API_KEY",
                 connect: Optional[Callable[[], dict]] = None):
        if not isinstance(model, str) or not model:
            raise ValueError(f"{model_id!r}: name a model after 'openai/', e.g. "
                             "'openai/gpt-4o-mini'")
        if importlib.util.find_spec("openai") is None:
            raise ImportError(f"{model_id!r} needs the 'openai' package: "
                              "pip install 'lmql_nb[openai]'")
        self.model_id = model_id
        options = options or OpenAIOptions()
        azure_endpoint = options.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        if azure_endpoint is not None:
            key_env = "AZURE_OPENAI_API_KEY"
            base_url = options.base_url
        else:
            base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.transport = Transport(
            model, base_url=base_url,
            api_key=options.api_key if options.api_key is not None else os.environ.get(key_env),
            azure_endpoint=azure_endpoint,
            api_version=options.api_version or os.environ.get("OPENAI_API_VERSION"),
            azure_deployment=options.azure_deployment, azure_ad_token=options.azure_ad_token,
            organization=options.organization, project=options.project,
            timeout=options.timeout, max_retries=options.max_retries,
            retry_max_wait=options.retry_max_wait, max_concurrency=options.max_concurrency)
        # `connect()` (the Jupyter extension) says where the server is, on first use
        self._connect = connect
        self.official = connect is None and (self.azure or is_official(base_url))
        if self.official and not (self.transport.api_key or self.transport.azure_ad_token):
            raise ValueError(f"{model_id!r} needs an API key: pass api_key=... or set "
                             f"${key_env}")
        if self.azure and not self.transport.api_version:
            raise ValueError("Azure OpenAI needs an api_version (or $OPENAI_API_VERSION), "
                             "e.g. api_version='2024-10-21'")
        self.chat = options.chat if options.chat is not None else (
            self.official and not model.startswith(COMPLETION_MODELS))
        self.stop = options.stop or ()
        self.chat_template = (None if options.chat_template is None
                              else template_source(options.chat_template))
        self.scoring = options.scoring
        # score_many keeps enough rows in flight to fill every slot with a full batch
        self.score_window = options.max_concurrency * options.batch_rows
        self._batcher = RowBatcher(self.transport, options.batch_rows, self._echo)
        self._lock = threading.Lock()
        self._capabilities: Optional[Capabilities] = None
        self._tokenizer: Optional[RemoteTokenizer] = None

    # identity ---------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model's name on the server."""
        return self.transport.model

    @property
    def url(self) -> str:
        """Where requests go (never with credentials)."""
        return self.transport.url

    @property
    def base_url(self) -> Optional[str]:
        """The API root given (or found through a named endpoint); None: OpenAI's."""
        return self.transport.base_url

    @property
    def azure(self) -> bool:
        return self.transport.azure

    @property
    def _api_key(self) -> Secret:
        return self.transport.api_key

    def __repr__(self) -> str:
        return (f"OpenAIBackend({self.model!r}, url={self.url!r}, "
                f"endpoint={'chat' if self.chat else 'completions'!r})")

    def identity(self) -> str:
        return f"openai:{self.url}:{self.model}:{'chat' if self.chat else 'completions'}"

    # capabilities -----------------------------------------------------------------------

    def load(self) -> None:
        """Check the server once: that it serves the model, and what it offers."""
        self._probe()

    def _probe(self) -> Capabilities:
        with self._lock:
            if self._capabilities is not None:
                return self._capabilities
            if self._connect is not None:
                info = self._connect()
                self.transport.connect_to(info["base_url"], info["name"], info.get("api_key"))
                self._connect = None
        capabilities = Capabilities(tokenize=False) if self.official else self._probe_server()
        with self._lock:
            self._capabilities = capabilities
        return capabilities

    def _probe_server(self) -> Capabilities:
        import openai

        client = self.transport.sync_client()
        try:
            listing = client.models.list()
        except openai.APIStatusError as error:
            raise self.transport.failure(error, 1) from None
        except openai.APIError as error:
            raise self.transport.failure(error, 1, "; is the server running?") from None
        models = tuple(m.id for m in listing.data)
        card = next((m for m in listing.data if m.id == self.model), None)
        if models and card is None:
            raise BackendError(f"{self.url} does not serve a model named {self.model!r}; "
                               f"it serves: {', '.join(models)}")
        context = getattr(card, "max_model_len", None)
        owner = getattr(card, "owned_by", None)
        try:
            body = self.transport.post_sync("/tokenize", {"prompt": "a"})
            tokenize = isinstance(body, dict) and isinstance(body.get("tokens"), list)
        except BackendError:
            tokenize = False
        return Capabilities(tokenize, context if isinstance(context, int) else None,
                            owner if isinstance(owner, str) else "")

    @property
    def context_length(self) -> Optional[int]:
        return self._capabilities.context_length if self._capabilities else None

    def _server(self) -> dialect.Server:
        """What requests are built for (probes the server the first time)."""
        capabilities = self._probe()
        vllm_like = not self.official and capabilities.tokenize
        return dialect.Server(self.model, self.url, self.chat, self.official, vllm_like,
                              self.stop, capabilities.owner)

    def get_tokenizer(self) -> RemoteTokenizer:
        if not self._probe().tokenize:
            raise BackendError(self._no_tokenizer_reason())
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = RemoteTokenizer(self.transport)
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
        # no request slot: /tokenize runs no model, and a row must not wait behind the
        # scoring requests to join the next one (score_many bounds the rows in flight)
        body = await self.transport.post("/tokenize", {"prompt": text,
                                                       "add_special_tokens": special},
                                         slot=False)
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
            raise BackendError(f"{self.url}/tokenize answered without a token list")
        return [int(t) for t in body["tokens"]]

    # generation -------------------------------------------------------------------------

    async def generate(self, prompt: str, options: GenerateOptions,
                       on_token: Optional[TokenCallback] = None) -> list[Generation]:
        messages = [{"role": "user", "content": prompt}] if self.chat else None
        return await self._complete(prompt, messages, options, on_token)

    async def generate_chat(self, messages: list[dict[str, str]], options: GenerateOptions,
                            on_token: Optional[TokenCallback] = None) -> list[Generation]:
        """A conversation through `/v1/chat/completions`: OpenAI's roles for OpenAI's
        models, the server's own chat template (or `chat_template=`) for
        OpenAI-compatible servers, whichever endpoint text prompts use."""
        if self.official and not self.chat:
            raise ValueError(f"the openai backend sends {self.model!r} to /v1/completions, "
                             "which takes a text prompt, not a conversation: use a chat "
                             "model, or pass the prompt as a str")
        if messages[-1]["role"] == "assistant":
            raise ValueError(f"the openai backend cannot continue an assistant's message "
                             f"({self.model!r} answers in a turn of its own): end the "
                             "conversation with a user's message, or use a local: model")
        chat = self
        if not self.chat:  # this model's text prompts go to /v1/completions
            chat = copy.copy(self)
            chat.chat = True
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        return await chat._complete(text, list(messages), options, on_token)

    async def _complete(self, prompt: str, messages: Optional[list[dict[str, str]]],
                        options: GenerateOptions,
                        on_token: Optional[TokenCallback]) -> list[Generation]:
        """`prompt` to /v1/completions, or `messages` to /v1/chat/completions."""
        server = self._server()
        tokens = options.return_details or on_token is not None
        params = dialect.request_parameters(options, server, tokens=tokens)
        if messages is not None:
            params["messages"] = messages
            if self.chat_template is not None:
                params["extra_body"] = {**params.get("extra_body", {}),
                                        "chat_template": self.chat_template}
        else:
            params["prompt"] = prompt
        try:
            return await self._generate(params, prompt, options, on_token, server, tokens)
        except BackendError as error:
            raise self._chat_template_error(error) from None

    def _chat_template_error(self, error: BackendError) -> BackendError:
        """A server's refusal to chat without a template, as what to do about it."""
        message = str(error).rstrip(".")
        if not self.chat or "chat template" not in message.lower():
            return error
        if self.chat_template is not None:
            return BackendError(
                f"{message}. lmql_nb sent the chat_template given to lmql_nb.model(...): "
                "vLLM uses a template from the request only when started with "
                "--trust-request-chat-template")
        return BackendError(
            f"{message}. The model {self.model!r} at {self.url} has no chat template: pass "
            "one as lmql_nb.model(..., chat_template=\"...\") (vLLM takes it when "
            "started with --trust-request-chat-template), start vLLM with --chat-template "
            "FILE, or pass chat=False to use /v1/completions")

    async def _generate(self, params: dict, prompt: str, options: GenerateOptions,
                        on_token: Optional[TokenCallback], server: dialect.Server,
                        tokens: bool) -> list[Generation]:
        if tokens and self._masks_logprobs(options, server):
            # vLLM's numbers come after its mask: ask for the ids to echo them (premask)
            params["extra_body"] = {**params.get("extra_body", {}), "return_token_ids": True}
            return await self._generate_unmasked(params, prompt, options, on_token)
        if tokens and on_token is None and server.owner == "vllm":  # the tokens' ids too
            params["extra_body"] = {**params.get("extra_body", {}), "return_token_ids": True}
        generations = await self._generate_once(params, prompt, options, on_token)
        missing = options.n - len(generations)
        if missing > 0 and options.decoder == "sample":
            # a server that ignores n (llama.cpp's does): ask for the rest one at a time
            more = await gather(*(self._generate_once(
                {**params, "n": 1, **({"seed": options.seed + len(generations) + i}
                                      if options.seed is not None else {})},
                prompt, options, _shifted(on_token, len(generations) + i))
                for i in range(missing)))
            generations += [g for batch in more for g in batch[:1]]
        if len(generations) != options.n:
            raise BackendError(f"{self.url} returned {len(generations)} sequences for "
                               f"n={options.n}")
        return generations

    async def _generate_once(self, params: dict, prompt: str, options: GenerateOptions,
                             on_token: Optional[TokenCallback]) -> list[Generation]:
        body = params if on_token is None else {**params, "stream": True}

        def create(client: Any) -> Awaitable[Any]:
            endpoint = client.chat.completions if self.chat else client.completions
            return endpoint.create(**body)

        k = options.top_logprobs
        stops = self.stop + (options.constraint.stops if options.constraint else ())
        if on_token is None:
            response = await self.transport.request(create)
            return [parsing.generation(choice, prompt, k, self.chat, stops)
                    for choice in sorted(response.choices, key=lambda c: c.index)]
        async with self.transport.slot():  # the slot is held while the stream lasts
            stream = await self.transport.request(create, slot=False)
            return await parsing.read_stream(stream, prompt, k, self.chat, on_token,
                                             self._broke_off, f"{self.url} (model "
                                                              f"{self.model!r})", stops)

    @staticmethod
    def _masks_logprobs(options: GenerateOptions, server: dialect.Server) -> bool:
        """Whether the server's log-probabilities for this request are after a
        constraint's mask: vLLM's are (structured outputs); `lmql_nb serve`'s are the
        model's own."""
        spec = options.constraint
        return spec is not None and spec.shaped and server.owner == "vllm"

    async def _generate_unmasked(self, params: dict, prompt: str, options: GenerateOptions,
                                 on_token: Optional[TokenCallback]) -> list[Generation]:
        """A constrained generation on vLLM with the model's own numbers (see `premask`):
        one request for the text, one echo of its token ids for the numbers. Tokens reach
        `on_token` once both answers are in."""
        def create(client: Any) -> Awaitable[Any]:
            endpoint = client.chat.completions if self.chat else client.completions
            return endpoint.create(**params)

        k = options.top_logprobs
        stops = self.stop + (options.constraint.stops if options.constraint else ())
        response = await self.transport.request(create)
        choices = sorted(response.choices, key=lambda c: c.index)
        served = [parsing.generation(choice, prompt, k, self.chat, stops) for choice in choices]
        ids = [premask.token_ids(response, choice) for choice in choices]
        echo = await self.transport.request(lambda client: client.completions.create(
            model=self.model, prompt=[p + g for p, g in ids], max_tokens=0, echo=True,
            logprobs=k, temperature=0.0))
        echoed = sorted(echo.choices, key=lambda c: c.index)
        results = []
        for index, (generation, (prompt_ids, generated), own) in enumerate(
                zip(served, ids, echoed)):
            listed = generation.tokens + ((generation.end_token,) if generation.end_token
                                          else ())
            if len(generated) != len(listed):
                raise BackendError(f"{self.url} returned {len(generated)} token ids for "
                                   f"{len(listed)} tokens with log-probabilities")
            merged = premask.merge(listed, generated, own.logprobs, len(prompt_ids), k)
            end = merged[-1] if generation.end_token is not None else None
            tokens = merged[:-1] if end is not None else merged
            results.append(dataclasses.replace(generation, tokens=tokens, end_token=end))
            if on_token is not None:
                for token in tokens:
                    on_token(index, token)
        return results

    def _broke_off(self, error: BaseException, received: int) -> BackendError:
        return BackendError(self.transport.redact(
            f"the stream from {self.url} (model {self.model!r}) broke off after {received} "
            f"tokens: {self.transport.describe(error)}"))

    # token ids (branches) ----------------------------------------------------------------

    def _require_token_ids(self) -> None:
        """NotImplementedError unless this server takes token-id prompts (vLLM-style
        /v1/completions)."""
        if self.chat:
            raise NotImplementedError(
                f"{self.model!r} is used through /v1/chat/completions, whose prompts are "
                "messages, not token ids; pass chat=False to use /v1/completions")
        if not self._server().vllm_like:
            raise NotImplementedError(self._no_tokenizer_reason())

    async def encode_prompt(self, prompt: str) -> list[int]:
        self._require_token_ids()
        return await self._tokenize(prompt)

    async def generate_ids(self, prompt_ids: Sequence[int], prompt: str,
                           options: GenerateOptions,
                           on_token: Optional[TokenCallback] = None, *,
                           prefix_ids: Sequence[int] = (),
                           forced_ids: Sequence[int] = ()) -> list[Generation]:
        """On the server: one request with the ids as the prompt for what follows, and
        for each forced token its distribution (top-k) and its own log-probability
        (echoed). Tokens come back named by id and are detokenised in context. A
        constraint other than stop strings applies only to the server's own completion,
        so it is refused after a prefix. Tokens reach `on_token` once the answer is in."""
        self._require_token_ids()
        spec = options.constraint
        if spec is not None and spec.shaped and (prefix_ids or forced_ids):
            raise ValueError(
                "over HTTP a constraint (choices, regex, type, json_schema, where) applies to "
                "the server's own completion only, not to tokens given before it, so it "
                "cannot continue after a prefix; use an in-process model (local:, "
                "llama.cpp:) or stop strings")
        if options.max_tokens is not None and options.max_tokens < len(forced_ids):
            raise ValueError(f"max_tokens={options.max_tokens} leaves no room for the "
                             f"{len(forced_ids)} forced token(s); allow at least that many")
        context = [int(t) for t in prompt_ids] + [int(t) for t in prefix_ids]
        k = options.top_logprobs
        forced = [await self._forced_token(context + list(forced_ids[:i]), token_id, k)
                  for i, token_id in enumerate(forced_ids)]
        remaining = None if options.max_tokens is None else options.max_tokens - len(forced)
        if remaining == 0:
            completions = [Generation("", (), "length", prompt)] * options.n
        else:
            params = dialect.with_token_ids(dialect.request_parameters(
                dataclasses.replace(options, max_tokens=remaining), self._server()))
            params["prompt"] = context + list(forced_ids)
            response = await self.transport.request(
                lambda client: client.completions.create(**params))
            completions = [parsing.generation(choice, prompt, k, False)
                           for choice in sorted(response.choices, key=lambda c: c.index)]
        tokenizer = self.get_tokenizer()
        results = []
        for index, completion in enumerate(completions):
            tokens = await wait(run_in_thread(parsing.with_texts, forced + list(completion.tokens),
                                              tokenizer, context, name="lmql_nb-detokenize"))
            results.append(Generation("".join(t.text for t in tokens), tokens,
                                      completion.finish_reason, prompt, tuple(prefix_ids)))
            if on_token is not None:
                for token in tokens:
                    on_token(index, token)
        return results

    async def _forced_token(self, context: list[int], token_id: int, k: int) -> TokenInfo:
        """`token_id` after `context`: its log-probability (echoed) and the top `k` of the
        distribution it is taken from (the first token of a one-token completion)."""
        def ask(**body: Any) -> Any:
            body = dialect.with_token_ids({"model": self.model, "temperature": 0.0, **body})
            return self.transport.request(lambda client: client.completions.create(**body))

        echoed = await ask(prompt=context + [token_id], max_tokens=0, echo=True, logprobs=0)
        logprobs = echoed.choices[0].logprobs
        scores = list(logprobs.token_logprobs or []) if logprobs else []
        if len(scores) < len(context) + 1 or scores[len(context)] is None:
            raise BackendError(f"{self.url} did not echo the log-probability of a token-id "
                               "prompt, so it cannot continue from token ids")
        top: tuple = ()
        if k:
            first = await ask(prompt=context, max_tokens=1, logprobs=k)
            generated = parsing.completion_tokens(first.choices[0].logprobs, k)
            top = generated[0].top if generated else ()
        logprob = float(scores[len(context)])
        rank = next((r for r, a in enumerate(top, 1) if a.token_id == token_id), None)
        return TokenInfo(token_id, f"token_id:{token_id}", logprob, rank, None, top)

    # scoring ----------------------------------------------------------------------------

    async def score(self, prompt: str, values: list[str],
                    options: ScoreOptions) -> list[ValueScores]:
        if self.scoring == "first-token-approximation":
            return await self._approximate_scores(prompt, values)
        self._check_exact_scoring()
        return await self._exact_scores(prompt, values)

    async def _echo(self, rows: list[tuple[Any, int]]) -> list:
        """One echo of prompts (texts or token-id lists) with their log-probabilities,
        generating nothing: the choices in order (vLLM also returns each prompt's ids).
        `rows` pairs each prompt with the first token whose log-probability is needed;
        `lmql_nb serve` is told so (`logprobs_from`) and computes only those, other
        servers echo them all."""
        prompts = [prompt for prompt, _ in rows]
        response = await self.transport.request(lambda client: client.completions.create(
            model=self.model, prompt=prompts, max_tokens=0, echo=True, logprobs=0,
            temperature=0.0, **self._echo_extra([start for _, start in rows])), slot=False)
        return sorted(response.choices, key=lambda c: c.index)

    def _echo_extra(self, starts: list[int]) -> dict:
        """An echo's `extra_body` for this server: the prompts' ids where it returns them,
        `logprobs_from` where it is `lmql_nb serve` (never sent to vLLM or OpenAI)."""
        owner = self._server().owner
        extra: dict[str, Any] = {"return_token_ids": True} if owner in TOKEN_IDS else {}
        if owner in LOGPROBS_FROM and any(starts):
            extra["logprobs_from"] = starts
        return {"extra_body": extra} if extra else {}

    async def score_chat(self, messages: list[dict], values: list[str],
                         options: ScoreOptions) -> list[ValueScores]:
        """Each value scored as in process (`ChatFormat.split`), the conversation rendered
        by the server's `/tokenize` with `messages` (its chat template, or
        `chat_template=`) and the token ids echoed on /v1/completions: after a user's
        message, the reply's text (tokenised alone) then the template's end-of-turn token,
        after the generation prompt; after an assistant's message, its continuation."""
        self._check_chat_scoring()
        if messages[-1]["role"] == "assistant":
            context = await self._tokenize_chat(messages, continued=True)
            last = messages[-1]
            joints = await gather(*(self._tokenize_chat(
                [*messages[:-1], dict(last, content=last["content"] + value)], continued=True)
                for value in values))
            splits = [(joint, len(joint) - common_prefix_length(context, joint))
                      for joint in joints]
        else:
            context = await self._tokenize_chat(messages, generation_prompt=True)
            end = await self._end_of_turn(messages, context)
            replies = await gather(*(self._tokenize(value, special=False) for value in values))
            splits = [(context + reply + [end], len(reply) + 1) for reply in replies]
        choices = await self._batcher.submit([(joint, len(joint) - count)
                                              for joint, count in splits])
        return parsing.echoed_scores(choices, splits, self.url, self._what_scores())

    def _check_chat_scoring(self) -> None:
        """ScoringNotSupported unless the server renders conversations into token ids
        (`/tokenize` with `messages`) and echoes token-id prompts."""
        if self.official:
            raise ScoringNotSupported(
                f"the openai backend cannot score replies to a conversation with "
                f"{self.model!r}: OpenAI's API returns log-probabilities only of what the "
                "model writes (there is no echo of given text) and offers no tokenizer "
                "endpoint. Score conversations on a vLLM server (`vllm serve MODEL`) or "
                "`python -m lmql_nb serve`, which render the chat template through "
                "/tokenize and echo token ids, or with a local: or llama.cpp: model")
        if not self._probe().tokenize:
            raise ScoringNotSupported(
                f"the openai backend cannot score replies to a conversation with "
                f"{self.model!r}: {self._no_tokenizer_reason()}, and renders no "
                "conversation into token ids. Score conversations on vLLM or `python -m "
                "lmql_nb serve`, or with a local: or llama.cpp: model")

    async def _tokenize_chat(self, messages: list[dict], *, generation_prompt: bool = False,
                             continued: bool = False) -> list[int]:
        """The token ids of a conversation as the server's chat template renders it
        (vLLM's `/tokenize` with `messages`; `chat_template=` sent along if given)."""
        body: dict[str, Any] = {"messages": list(messages),
                                "add_generation_prompt": generation_prompt,
                                "continue_final_message": continued,
                                "add_special_tokens": False}
        if self.chat_template is not None:
            body["chat_template"] = self.chat_template
        answer = await self.transport.post("/tokenize", body, slot=False)
        if not isinstance(answer, dict) or not isinstance(answer.get("tokens"), list):
            raise BackendError(f"{self.url}/tokenize answered a conversation without a "
                               "token list")
        return [int(t) for t in answer["tokens"]]

    async def _end_of_turn(self, messages: list[dict], context: list[int]) -> int:
        """The token the server's template ends an assistant's turn with: the first it
        writes after the content of an assistant's message answering `messages`. Checks
        that the prompt (`context`, the generation prompt) begins that conversation, so a
        reply's tokens sit where the template writes an assistant's content."""
        probe = [*messages, {"role": "assistant", "content": CHAT_PROBE}]
        opened, closed = await gather(self._tokenize_chat(probe, continued=True),
                                      self._tokenize_chat(probe))
        template = ("the chat_template given to lmql_nb.model(...)"
                    if self.chat_template is not None else
                    f"the chat template of {self.model!r} at {self.url}")
        if opened[:len(context)] != context:
            shared = common_prefix_length(context, opened)
            raise ScoringNotSupported(
                f"cannot score replies to this conversation through {self.url}: "
                f"{template} renders the prompt an assistant answers after "
                f"(add_generation_prompt, {len(context)} tokens) differently from the "
                f"conversation with an assistant's message (they differ from token "
                f"{shared} on), so it cannot tell where a reply's tokens begin. Score it "
                "with a local: or llama.cpp: model (the template's generation prompt, then "
                "the reply), or use a template whose generation prompt begins the "
                "assistant's turn as it writes it")
        if closed[:len(opened)] != opened or len(closed) == len(opened):
            raise ScoringNotSupported(
                f"cannot score replies to this conversation through {self.url}: "
                f"{template} writes no token after an assistant's message that its "
                "continued rendering (continue_final_message) does not change, so the "
                "end-of-turn token is unknown; score it with a local: or llama.cpp: model")
        return closed[len(opened)]

    async def _exact_scores(self, prompt: str, values: list[str]) -> list[ValueScores]:
        """The values' tokens scored by echoing prompt + value with their
        log-probabilities (`max_tokens=0`), in a request shared with other rows waiting
        (`batching`). The prompt's ids come from /tokenize; vLLM and `lmql_nb serve`
        tokenise prompt + value themselves and return the ids (`return_token_ids`),
        elsewhere those come from /tokenize too."""
        prompt_ids = await self._tokenize(prompt)
        if self._server().owner in TOKEN_IDS:
            # the values' tokens begin after the prompt's unless the joint tokenisation
            # merges across the boundary: those rows are asked again from their split
            texts = [prompt + v for v in values]
            choices = await self._batcher.submit([(text, len(prompt_ids)) for text in texts])
            joints = [premask.prompt_ids(choice) for choice in choices]
            splits = self._splits(prompt_ids, values, joints)
            again = [i for i, (joint, count) in enumerate(splits)
                     if len(joint) - count < len(prompt_ids)
                     and self._server().owner in LOGPROBS_FROM]
            if again:
                redone = await self._batcher.submit(
                    [(texts[i], len(splits[i][0]) - splits[i][1]) for i in again])
                for i, choice in zip(again, redone):
                    choices[i] = choice
            return parsing.echoed_scores(choices, splits, self.url, self._what_scores())
        joints = await gather(*(self._tokenize(prompt + value) for value in values))
        splits = self._splits(prompt_ids, values, joints)
        choices = await self._batcher.submit([(joint, 0) for joint, _ in splits])
        return parsing.echoed_scores(choices, splits, self.url, self._what_scores())

    @staticmethod
    def _splits(prompt_ids: list[int], values: list[str],
                joints: Sequence[list[int]]) -> list[tuple[list[int], int]]:
        """(joint ids, how many of them are the value's) per value."""
        splits = []
        for value, joint in zip(values, joints):
            shared = common_prefix_length(prompt_ids, joint)
            if shared == 0:
                raise ValueError(f"cannot score {value!r} after an empty prompt with this "
                                 "model (its tokenizer adds no start token); pass a prompt")
            splits.append((joint, len(joint) - shared))
        return splits

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
        """Each value's score from the first token's top-k candidates (see
        `parsing.approximate_scores`), with a warning that says so."""
        warnings.warn(
            f"{self.model!r}: scores are a first-token approximation (the log-probability of "
            "the first token of each value, from the top-20 candidates), not exact "
            "log-probabilities of the values", ApproximateScoreWarning, stacklevel=3)
        k = APPROXIMATION_CANDIDATES if self.chat or not self.official \
            else dialect.OFFICIAL_COMPLETIONS_MAX_LOGPROBS
        if self.chat:
            response = await self.transport.request(lambda client: client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], max_tokens=1,
                temperature=0.0, logprobs=True, top_logprobs=k))
        else:
            response = await self.transport.request(lambda client: client.completions.create(
                model=self.model, prompt=prompt, max_tokens=1, temperature=0.0, logprobs=k))
        candidates = parsing.first_token_candidates(response, self.chat)
        if not candidates:
            raise BackendError(f"{self.url} returned no first-token log-probabilities to "
                               "approximate scores with")
        return parsing.approximate_scores(values, candidates, k)


def _shifted(on_token: Optional[TokenCallback], offset: int) -> Optional[TokenCallback]:
    """`on_token` for a sequence requested on its own, reporting its index in the call."""
    if on_token is None:
        return None
    return lambda index, token: on_token(index + offset, token)
