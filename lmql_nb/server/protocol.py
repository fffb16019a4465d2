"""Validation of request bodies: JSON in, typed requests out, 400s with a message.

The accepted fields follow OpenAI's API and vLLM's extensions to it (`top_k`,
`use_beam_search`, `prompt_logprobs`, `add_special_tokens`, `return_tokens_as_token_ids`,
`structured_outputs`, `chat_template`), so that a client written for vLLM works here.
Two extensions of this server's own: `logprobs_from` (see `_logprobs_from`) and
`token_details` (generated tokens as lmql_nb's results hold them: see `responses`).
`frequency_penalty`, `presence_penalty` (OpenAI's) and `repetition_penalty` (vLLM's) are
applied as in process (`lmql_nb.backends.engine.penalties`). Fields OpenAI defines that
this server does not implement are accepted only at their neutral value (e.g.
`logit_bias={}`); anything else is a 400 naming what works.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Optional, Union

from ..core.options import GENERATE_RULES, NEUTRAL_PENALTIES, PENALTY_OPTIONS
from ..core.validation import Rule, check_strings
from .errors import bad_request
from .structured import engine_options

if TYPE_CHECKING:
    from ..core.options import GenerateOptions

MAX_LOGPROBS = 20
MAX_N = 64

Prompt = Union[str, list[int]]

# fields OpenAI defines that are accepted only with these neutral values
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "logit_bias": (None, {}),
    "suffix": (None, ""),
    "best_of": (None, 1),
    "min_p": (None, 0, 0.0),
    "length_penalty": (None, 1, 1.0),
}
_IGNORED = {"user", "stream_options", "metadata", "store", "service_tier", "request_id",
            "skip_special_tokens", "spaces_between_special_tokens", "echo_prompt"}

_COMPLETION_FIELDS = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed",
    "include_stop_str_in_output", "min_tokens",
    "logprobs", "echo", "stream", "prompt_logprobs", "use_beam_search", "add_special_tokens",
    "return_tokens_as_token_ids", "return_token_ids", "structured_outputs", "logprobs_from",
    "token_details",
} | set(_NEUTRAL) | set(PENALTY_OPTIONS) | _IGNORED
_CHAT_FIELDS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "top_k", "n", "stop", "seed", "logprobs", "top_logprobs", "stream", "use_beam_search",
    "include_stop_str_in_output", "min_tokens",
    "structured_outputs", "chat_template", "add_generation_prompt", "response_format",
    "token_details",
} | set(_NEUTRAL) | set(PENALTY_OPTIONS) | _IGNORED


@dataclasses.dataclass(frozen=True)
class Sampling:
    """What every generating request shares (completions and chat)."""

    model: str
    max_tokens: Optional[int]
    temperature: float
    top_p: Optional[float]
    top_k: Optional[int]
    n: int
    stop: tuple[str, ...]
    seed: Optional[int]
    logprobs: Optional[int]  # None: no logprobs; k: the token's own and k alternatives
    stream: bool
    include_usage: bool
    beam: bool
    structured: Optional[dict]
    keep_stop: bool = False  # vLLM's include_stop_str_in_output
    min_tokens: int = 0  # vLLM's: no end-of-sequence or stop string before this many tokens
    token_details: bool = False  # this server's: generated tokens' TokenInfo in logprobs
    #: frequency_penalty, presence_penalty (OpenAI's), repetition_penalty (vLLM's), as
    #: (name, value) pairs for those given away from their neutral value
    penalties: tuple[tuple[str, float], ...] = ()

    def to_options(self) -> "GenerateOptions":
        """The engine's options for this request (as vLLM's `to_sampling_params`); a
        combination the engine refuses is a 400 with its message."""
        from ..core.options import parse_generate_options
        from .structured import generate_options

        options: dict[str, Any] = {"return_details": True,
                                   "top_logprobs": self.logprobs or 0, "cache": False}
        if self.stop:
            options["stops_at" if self.keep_stop else "stops_before"] = list(self.stop)
        if self.min_tokens:
            options["min_tokens"] = self.min_tokens
        if self.beam:
            options.update(decoder="beam", n=self.n)
        elif self.temperature > 0:
            options.update(decoder="sample", n=self.n, temperature=self.temperature)
            if self.top_p is not None and self.top_p < 1:
                options["top_p"] = self.top_p
            if self.top_k is not None:
                options["top_k"] = self.top_k
            if self.seed is not None:
                options["seed"] = self.seed
        options.update(self.penalties)
        try:
            return parse_generate_options(self.max_tokens, **options,
                                          **generate_options(self.structured))
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None

    @property
    def rows(self) -> int:
        """How many sequences the engine decodes per prompt."""
        return self.n if (self.beam or self.temperature > 0) else 1

    @property
    def copies(self) -> int:
        """How many identical copies an argmax request returns (OpenAI allows n>1 there)."""
        return self.n if (not self.beam and self.temperature == 0) else 1


@dataclasses.dataclass(frozen=True)
class CompletionRequest:
    """A `/v1/completions` request, validated."""

    sampling: Sampling
    prompts: list[Prompt]
    echo: bool
    prompt_logprobs: Optional[int]
    add_special_tokens: bool
    tokens_as_ids: bool
    token_ids: bool = False  # vLLM's return_token_ids: prompt_token_ids, token_ids
    #: per prompt, the first token whose log-probability is computed (`logprobs_from`)
    logprobs_from: Optional[tuple[int, ...]] = None

    @property
    def wants_prompt_scores(self) -> bool:
        """Whether the prompt's tokens are scored: `prompt_logprobs`, or (as in vLLM)
        `echo` with `logprobs`."""
        return self.prompt_logprobs is not None or (
            self.echo and self.sampling.logprobs is not None)

    @property
    def prompt_top(self) -> Optional[int]:
        """How many alternatives each prompt token needs, None when neither they nor the
        tokens' ranks are shown (echo with logprobs=0: log-probabilities alone)."""
        if self.prompt_logprobs is None and not (self.echo and self.sampling.logprobs):
            return None
        return max(self.prompt_logprobs or 0, self.sampling.logprobs if self.echo and
                   self.sampling.logprobs else 0)


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """A `/v1/chat/completions` request, validated."""

    sampling: Sampling
    messages: list[dict]
    chat_template: Optional[str]
    add_generation_prompt: bool


def _require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _check_fields(body: dict, accepted: set, endpoint: str) -> None:
    unknown = sorted(set(body) - accepted)
    if unknown:
        raise bad_request(f"{endpoint} does not accept the field(s) {', '.join(unknown)}; "
                          f"accepted fields: {', '.join(sorted(accepted - _IGNORED))}",
                          unknown[0])
    for name, neutral in _NEUTRAL.items():
        if name in body and body[name] not in neutral:
            raise bad_request(f"{name}={body[name]!r} is not supported by this server; "
                              f"leave it out (or {neutral[1]!r})", name)


def _checked(body: dict, name: str, rule: Rule, default: Any = None) -> Any:
    """`body[name]` (or `default`) checked by the shared `rule`: the API's words, as a 400."""
    try:
        return rule.check(name, body.get(name, default))
    except (TypeError, ValueError) as error:
        raise bad_request(str(error), name) from None


def _int(body: dict, name: str, default: Any, minimum: int, maximum: Optional[int] = None,
         nullable: bool = False) -> Any:
    return _checked(body, name, Rule("int", minimum, maximum, optional=nullable), default)


def _bool(body: dict, name: str, default: bool) -> bool:
    """A boolean field; null means the default (as OpenAI's clients send it)."""
    return default if body.get(name) is None else _checked(body, name, Rule("bool"))


def _option(body: dict, name: str, default: Any = None, field: Optional[str] = None) -> Any:
    """A field that is one of `generate`'s options (`field`, default `name`): the same
    rule, so the server and the API accept and refuse the same values."""
    value = body.get(name)
    if value is None:
        return default
    return _checked(body, name, GENERATE_RULES[field or name])


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required: the name of a model from /v1/models", "model")
    return model


def _stop(body: dict) -> tuple[str, ...]:
    if body.get("stop") is None:
        return ()
    try:
        return check_strings("stop", body["stop"])
    except (TypeError, ValueError) as error:
        raise bad_request(str(error), "stop") from None


def _sampling(body: dict, max_tokens: Any, logprobs: Optional[int]) -> Sampling:
    temperature = _option(body, "temperature", 1.0)
    top_k = None if body.get("top_k") in (-1, 0) else _option(body, "top_k")  # -1: vLLM's "none"
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise bad_request("stream_options must be an object", "stream_options")
    beam = _bool(body, "use_beam_search", False)
    n = _int(body, "n", 1, 1, MAX_N)
    structured = body.get("structured_outputs")
    if structured is not None and not isinstance(structured, dict):
        raise bad_request("structured_outputs must be an object with one of the keys "
                          f"{', '.join(engine_options())}", "structured_outputs")
    return Sampling(
        model=_model(body), max_tokens=max_tokens, temperature=temperature,
        top_p=_option(body, "top_p"), top_k=top_k, n=n, stop=_stop(body),
        seed=_option(body, "seed"), logprobs=logprobs,
        stream=_bool(body, "stream", False),
        include_usage=bool(stream_options.get("include_usage", False)), beam=beam,
        structured=structured, keep_stop=_bool(body, "include_stop_str_in_output", False),
        min_tokens=_int(body, "min_tokens", 0, 0, None, nullable=True) or 0,
        token_details=_bool(body, "token_details", False),
        penalties=tuple((name, value) for name in PENALTY_OPTIONS
                        if (value := _option(body, name, NEUTRAL_PENALTIES[name]))
                        != NEUTRAL_PENALTIES[name]),
    )


def _prompts(body: dict) -> list[Prompt]:
    prompt = body.get("prompt")
    accepted = ("prompt must be a string, a list of strings, a list of token ids or a list "
                "of lists of token ids")
    if isinstance(prompt, str):
        return [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise bad_request(accepted, "prompt")
    if all(isinstance(p, str) for p in prompt):
        return list(prompt)
    if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return [list(prompt)]
    if all(isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool)
                                             for t in p) for p in prompt):
        return [list(p) for p in prompt]
    raise bad_request(accepted, "prompt")


def parse_completion(body: Any) -> CompletionRequest:
    """Validate a `/v1/completions` body."""
    body = _require_object(body)
    _check_fields(body, _COMPLETION_FIELDS, "/v1/completions")
    max_tokens = _checked(body, "max_tokens", GENERATE_RULES["max_tokens"], 16)  # null: no limit
    logprobs = _int(body, "logprobs", None, 0, MAX_LOGPROBS, nullable=True)
    prompt_logprobs = _int(body, "prompt_logprobs", None, 0, MAX_LOGPROBS, nullable=True)
    echo = _bool(body, "echo", False)
    sampling = _sampling(body, max_tokens, logprobs)
    if sampling.stream and sampling.beam:
        raise bad_request("stream is not supported with use_beam_search", "stream")
    if sampling.stream and (echo or prompt_logprobs is not None):
        raise bad_request("stream is not supported with echo or prompt_logprobs (send "
                          "the request without stream)", "stream")
    prompts = _prompts(body)
    request = CompletionRequest(sampling, prompts, echo, prompt_logprobs,
                                _bool(body, "add_special_tokens", True),
                                _bool(body, "return_tokens_as_token_ids", False),
                                _bool(body, "return_token_ids", False))
    starts = _logprobs_from(body, len(prompts))
    if starts is not None and not request.wants_prompt_scores:
        raise bad_request("logprobs_from needs prompt log-probabilities: send it with "
                          "echo=true and logprobs (or with prompt_logprobs)", "logprobs_from")
    return dataclasses.replace(request, logprobs_from=starts)


def _logprobs_from(body: dict, prompts: int) -> Optional[tuple[int, ...]]:
    """This server's extension `logprobs_from`: the index of the first prompt token whose
    log-probability the echo computes, one for every prompt or a list with one per
    prompt; the tokens before it come back with null log-probabilities (as the first
    token always does), and only the later ones are projected onto the vocabulary."""
    value = body.get("logprobs_from")
    if value is None:
        return None
    accepted = (f"logprobs_from must be a token index (an integer >= 0) or a list of "
                f"{prompts} such indices, one per prompt")
    values = value if isinstance(value, list) else [value]
    if (isinstance(value, list) and len(value) != prompts) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise bad_request(f"{accepted}; got {value!r}"[:300], "logprobs_from")
    return tuple(values) if isinstance(value, list) else (value,) * prompts


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    shape = ("messages must be a non-empty list of {\"role\": str, \"content\": str} objects "
             "(content may also be a list of {\"type\": \"text\", \"text\": str} parts)")
    if not isinstance(messages, list) or not messages:
        raise bad_request(shape, "messages")
    result = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(shape, "messages")
        content = message.get("content")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text"
                       and isinstance(p.get("text"), str) for p in content):
                raise bad_request("only text content parts are supported: "
                                  "{\"type\": \"text\", \"text\": str}", "messages")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise bad_request(shape, "messages")
        result.append({"role": message["role"], "content": content})
    return result


def parse_chat(body: Any) -> ChatRequest:
    """Validate a `/v1/chat/completions` body."""
    body = _require_object(body)
    _check_fields(body, _CHAT_FIELDS, "/v1/chat/completions")
    if "max_completion_tokens" in body:
        max_tokens = _option(body, "max_completion_tokens", field="max_tokens")
    else:
        max_tokens = _option(body, "max_tokens")
    wants = _bool(body, "logprobs", False)
    top = _int(body, "top_logprobs", None, 0, MAX_LOGPROBS, nullable=True)
    if top and not wants:
        raise bad_request("top_logprobs needs logprobs=true", "top_logprobs")
    response_format = body.get("response_format")
    structured = body.get("structured_outputs")
    if response_format is not None:
        structured = _response_format(response_format, structured)
    sampling = _sampling({**body, "structured_outputs": structured}, max_tokens,
                         (top or 0) if wants else None)
    if sampling.stream and sampling.beam:
        raise bad_request("stream is not supported with use_beam_search", "stream")
    template = body.get("chat_template")
    if template is not None and not isinstance(template, str):
        raise bad_request("chat_template must be a Jinja template string", "chat_template")
    return ChatRequest(sampling, _messages(body), template,
                       _bool(body, "add_generation_prompt", True))


def _response_format(response_format: Any, structured: Any) -> Optional[dict]:
    """OpenAI's `response_format` as a `structured_outputs` spec (None for plain text)."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return structured
    if structured is not None:
        raise bad_request("pass either response_format or structured_outputs, not both",
                          "response_format")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            got = type(spec).__name__ if not isinstance(spec, dict) else \
                f"schema of type {type(schema).__name__}"
            raise bad_request("response_format.json_schema must be an object holding the "
                              "schema object: {\"type\": \"json_schema\", \"json_schema\": "
                              f"{{\"name\": ..., \"schema\": {{...}}}}}}; got {got}",
                              "response_format")
        return {"json": schema}
    if kind == "json_object":
        return {"json": {"type": "object"}}
    raise bad_request("response_format.type must be one of text, json_schema, json_object",
                      "response_format")


@dataclasses.dataclass(frozen=True)
class TokenizeRequest:
    """A `/tokenize` request, validated: a text `prompt`, or (vLLM's chat form) `messages`
    rendered through the chat template."""

    model: Optional[str]
    prompt: Optional[str]
    add_special_tokens: bool
    return_token_strs: bool
    messages: Optional[list[dict]] = None
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    chat_template: Optional[str] = None


_TOKENIZE_FIELDS = {"model", "prompt", "add_special_tokens", "return_token_strs"}
_TOKENIZE_CHAT_FIELDS = {"model", "messages", "add_special_tokens", "return_token_strs",
                         "add_generation_prompt", "continue_final_message", "chat_template"}


def parse_tokenize(body: Any) -> TokenizeRequest:
    """Validate a `/tokenize` body, either of vLLM's two forms: model (optional), prompt,
    add_special_tokens (default true); or model, messages, add_generation_prompt (default
    true), continue_final_message (default false; the last message, an assistant's, left
    open), chat_template, add_special_tokens (default false: on top of the template's)."""
    body = _require_object(body)
    if "messages" not in body:
        _check_fields(body, _TOKENIZE_FIELDS, "/tokenize")
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise bad_request("prompt must be a string (or pass messages, a conversation)",
                              "prompt")
        return TokenizeRequest(_optional_model(body), prompt,
                               _bool(body, "add_special_tokens", True),
                               _bool(body, "return_token_strs", False))
    if "prompt" in body:
        raise bad_request("pass either prompt (a text) or messages (a conversation), not "
                          "both", "prompt")
    _check_fields(body, _TOKENIZE_CHAT_FIELDS, "/tokenize (with messages)")
    messages = _messages(body)
    generation_prompt = _bool(body, "add_generation_prompt", True)
    continued = _bool(body, "continue_final_message", False)
    if continued and generation_prompt:
        raise bad_request("continue_final_message=true leaves the last message open, so it "
                          "needs add_generation_prompt=false", "continue_final_message")
    if continued and messages[-1]["role"] != "assistant":
        raise bad_request("continue_final_message=true continues an assistant's message: "
                          "end messages with one", "continue_final_message")
    template = body.get("chat_template")
    if template is not None and not isinstance(template, str):
        raise bad_request("chat_template must be a Jinja template string", "chat_template")
    return TokenizeRequest(_optional_model(body), None,
                           _bool(body, "add_special_tokens", False),
                           _bool(body, "return_token_strs", False), messages,
                           generation_prompt, continued, template)


def parse_detokenize(body: Any) -> tuple[Optional[str], list[int]]:
    """Validate a `/detokenize` body: (model, token ids); as in vLLM, the model may be
    left out (lm-eval's remote tokenizer does)."""
    body = _require_object(body)
    _check_fields(body, {"model", "tokens"}, "/detokenize")
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool)
                                               for t in tokens):
        raise bad_request("tokens must be a list of token ids (integers)", "tokens")
    return _optional_model(body), tokens


def _optional_model(body: dict) -> Optional[str]:
    return None if body.get("model") is None else _model(body)
