"""The request body for `generate`'s options, in the server's dialect.

Two dialects of the same API:

- "vllm": vLLM's OpenAI server and `python -m lmql_nb serve`. Stop strings go in `stop`
  (with vLLM's `include_stop_str_in_output` for `stops_at`); the text's form goes in
  `extra_body={"structured_outputs": {...}}` as one of `regex`, `choice` or `json`;
  `top_k`, `repetition_penalty` and beam search (`use_beam_search`) are extensions in
  `extra_body`.
- "openai": OpenAI's API (and Azure's). `stop` (which drops the stop string, so
  `stops_before` only, at most 4) and, for a JSON schema, `response_format` (strict JSON
  schema; chat completions only); newer chat models take `max_completion_tokens`.

Both take `frequency_penalty` and `presence_penalty` as they are.

A constraint travels field by field: every field of `ConstraintSpec` has an entry in each
dialect's table below, and a field without one is refused, so nothing is ever sent to a
server that would not enforce it. What a server cannot enforce raises ValueError naming
it. A vLLM server applies stop strings and the structured output independently (the stop
cuts the text wherever it appears), whereas a local model admits a stop only where the
text is complete.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Optional

from ...constraints.grammar import INT_REGEX
from ...constraints.primitives import Pattern, regex_escape
from ...constraints.spec import ConstraintSpec
from ...core.options import GenerateOptions

DIALECTS = ("vllm", "openai")
OPENAI_MAX_STOPS = 4
OFFICIAL_COMPLETIONS_MAX_LOGPROBS = 5


@dataclasses.dataclass(frozen=True)
class Server:
    """What the request is built for."""

    model: str
    url: str
    chat: bool  # /v1/chat/completions (else /v1/completions)
    official: bool  # OpenAI's or Azure's own API
    vllm_like: bool  # speaks vLLM's extensions (it has /tokenize)
    stop: tuple[str, ...] = ()  # the model's own stop strings (its `stop=` option)
    #: who serves it, as /v1/models says (`owned_by`): "vllm", "lmql_nb", or "" unknown
    owner: str = ""

    @property
    def name(self) -> str:
        """The server in words, for errors."""
        known = {"vllm": "vLLM", "lmql_nb": "`lmql_nb serve`"}
        return f"{known[self.owner]} at {self.url}" if self.owner in known else self.url

    @property
    def dialect(self) -> str:
        return "openai" if self.official else "vllm"


def request_parameters(options: GenerateOptions, server: Server, tokens: bool = True) -> dict:
    """The request body (without prompt/messages) for `options`; `tokens`: ask for
    per-token log-probabilities (details and token callbacks need them)."""
    extra: dict = {}
    params: dict = {"model": server.model, "max_tokens": options.max_tokens}
    _decoder(options, server, params, extra)
    _penalties(options, server, params, extra)
    _no_hidden_penalty(server, extra)
    if server.chat and server.official:  # OpenAI's newer models accept only this spelling
        maximum = params.pop("max_tokens")
        if maximum is not None:
            params["max_completion_tokens"] = maximum
    stops = list(server.stop)
    spec = options.constraint
    _check_beam(options, server)
    if spec is not None:
        if spec.stops_at and stops:
            raise ValueError("stops_at cannot be combined with the model's stop option "
                             "over HTTP (the server keeps all stop strings or none)")
        if not server.official and not server.vllm_like and (spec.shaped or spec.stops_at):
            raise ValueError(
                f"{server.url} does not look like vLLM or `lmql_nb serve` (it has no "
                "/tokenize endpoint), so it would ignore vLLM's structured_outputs and "
                "include_stop_str_in_output: choices, regex, type, json_schema and "
                "stops_at are refused here rather than silently unenforced "
                "(stops_before works)")
        constraint = to_server_params(spec, server.dialect)
        stops += [s for s in constraint.pop("stop", []) if s not in stops]
        extra.update(constraint.pop("extra_body", {}))
        if "response_format" in constraint and not server.chat:
            raise ValueError("json_schema over OpenAI's API needs a chat model "
                             "(response_format)")
        params.update(constraint)
    if stops:
        params["stop"] = stops
    if tokens:
        _logprobs(options.top_logprobs, server, params)
        if server.owner == "lmql_nb":  # its extension: tokens as in-process results hold them
            extra["token_details"] = True
    if extra:
        params["extra_body"] = extra
    return params


def with_token_ids(params: dict) -> dict:
    """`params` asking a vLLM-style server to name tokens by id ("token_id:N" labels, its
    `return_tokens_as_token_ids`), so that results carry the ids a branch continues from."""
    return {**params, "extra_body": {**params.get("extra_body", {}),
                                     "return_tokens_as_token_ids": True}}


def _decoder(options: GenerateOptions, server: Server, params: dict, extra: dict) -> None:
    if options.decoder == "argmax":
        params["temperature"] = 0.0
    elif options.decoder == "sample":
        params.update(temperature=options.temperature, n=options.n)
        if options.top_p is not None:
            params["top_p"] = options.top_p
        if options.seed is not None:
            params["seed"] = options.seed
        if options.top_k is not None:
            if server.official:
                raise ValueError("top_k is not supported by OpenAI's API; use top_p")
            extra["top_k"] = options.top_k
    elif options.decoder == "beam_sample":
        raise ValueError(f"decoder='beam_sample' is not supported by {server.url}: no server "
                         "API samples a beam search; it runs on in-process models (local:, "
                         "llama.cpp:)")
    else:  # beam
        if not server.vllm_like:
            raise ValueError(f"decoder='beam' is not supported by {server.url}; beam "
                             "search needs a vLLM or `lmql_nb serve` server")
        params.update(temperature=0.0, n=options.n)
        extra["use_beam_search"] = True


def _penalties(options: GenerateOptions, server: Server, params: dict, extra: dict) -> None:
    """frequency_penalty and presence_penalty are OpenAI's own fields (vLLM takes them
    too); repetition_penalty is vLLM's extension. Refused where the server would not
    apply one: OpenAI has no repetition_penalty, a server not known to speak vLLM's
    extensions might ignore it, and vLLM's beam search ignores all three."""
    penalties = options.penalties
    if not penalties:
        return
    names = ", ".join(penalties)
    if options.decoder == "beam" and server.owner != "lmql_nb":
        raise ValueError(f"{names} with decoder='beam' is refused for {server.name}: vLLM's "
                         "beam search ignores penalties. Use decoder='argmax' or 'sample' "
                         "with them, or an in-process model (local:, llama.cpp:) or "
                         "`python -m lmql_nb serve`, whose beam search applies them")
    if "repetition_penalty" in penalties:
        if server.official:
            raise ValueError("repetition_penalty is not supported by OpenAI's API; use "
                             "frequency_penalty or presence_penalty (in [-2, 2])")
        if not server.vllm_like:
            raise ValueError(f"repetition_penalty is vLLM's extension and {server.url} does "
                             "not look like vLLM or `lmql_nb serve` (it has no /tokenize "
                             "endpoint), so it would ignore it: refused rather than silently "
                             "unapplied (frequency_penalty and presence_penalty work)")
        extra["repetition_penalty"] = penalties.pop("repetition_penalty")
    params.update(penalties)


#: llama-cpp-python's server, as its /v1/models names the owner of every model
LLAMA_CPP_PYTHON_OWNER = "me"


def _no_hidden_penalty(server: Server, extra: dict) -> None:
    """llama-cpp-python's server applies its own `repeat_penalty` of 1.1 unless told
    otherwise, so "argmax" there was not the model's greedy choice: send 1.0 (no
    penalty) to it; lmql_nb's penalties go as OpenAI's fields, which it also applies."""
    if server.owner == LLAMA_CPP_PYTHON_OWNER and not server.official:
        extra.setdefault("repeat_penalty", 1.0)


def _check_beam(options: GenerateOptions, server: Server) -> None:
    """Beam search with a constraint only where the server enforces both together.

    vLLM's beam search (`use_beam_search`) drops `structured_outputs` and stop strings:
    its output would not follow the constraint, so the combination is refused there
    (and on any server not known to enforce it); `lmql_nb serve` runs the in-process
    engine's constrained beam search.
    """
    spec = options.constraint
    constrained = bool(server.stop) or (spec is not None and (spec.shaped or bool(spec.stops)))
    if options.decoder != "beam" or not constrained or server.owner == "lmql_nb":
        return
    raise ValueError(
        f"decoder='beam' with a constraint (choices, regex, type, json_schema, where, stop "
        f"strings) is refused for {server.name}: vLLM's beam search ignores "
        "structured_outputs and stop strings, so the output would not follow the "
        "constraint. Use decoder='argmax' or 'sample' with the constraint, or beam search "
        "without one, or an in-process model (local:, llama.cpp:) or `python -m lmql_nb "
        "serve`, which enforce constraints in beam search")


def _logprobs(k: int, server: Server, params: dict) -> None:
    if server.chat:
        params.update(logprobs=True, top_logprobs=k)
        return
    if server.official and k > OFFICIAL_COMPLETIONS_MAX_LOGPROBS:
        raise ValueError(f"OpenAI's completions endpoint returns at most "
                         f"{OFFICIAL_COMPLETIONS_MAX_LOGPROBS} alternatives per token; "
                         f"pass top_logprobs <= {OFFICIAL_COMPLETIONS_MAX_LOGPROBS}")
    params["logprobs"] = k


# constraints, field by field --------------------------------------------------------------

class _Constraint:
    """What a constraint's fields have asked of the request so far."""

    def __init__(self) -> None:
        self.stops_at: tuple[str, ...] = ()
        self.stops_before: tuple[str, ...] = ()
        self.shapes: list[tuple[str, str, Any]] = []  # (structured_outputs key, name, value)
        self.unsupported: list[str] = []
        self.response_format: Optional[dict] = None
        self.extra: dict[str, Any] = {}  # vLLM's sampling extensions (min_tokens)


def _shape(key: str, name: str,
           value: Callable[[Any], Any] = lambda v: v) -> Callable[[_Constraint, Any], None]:
    """A field that becomes `structured_outputs[key]` (vLLM takes one of them)."""
    return lambda request, v: request.shapes.append((key, name, value(v)))


def _regexes(request: _Constraint, regexes: tuple[str, ...]) -> None:
    request.shapes += [("regex", f"regex {r!r}", r) for r in regexes]


def _refuse(name: str) -> Callable[[_Constraint, Any], None]:
    return lambda request, value: request.unsupported.append(name)


def _keep(field: str) -> Callable[[_Constraint, Any], None]:
    return lambda request, value: setattr(request, field, value)


def plain_regex(kind: str, value: Any) -> Optional[str]:
    """A regular primitive as one regex in the syntax vLLM's structured outputs take
    (None where it needs llguidance's intersection or complement)."""
    if kind == "regex":
        return str(value)
    if kind == "choices":
        return "(?:" + "|".join(regex_escape(c) for c in value) + ")"
    if kind == "type":
        return INT_REGEX
    if kind == "max_chars":
        return f"[\\s\\S]{{0,{value}}}"
    if kind == "pattern" and value.op == "regex":
        return str(value.regex)
    if kind == "pattern" and value.op in ("or", "and"):
        parts = [plain_regex(k, v) for k, v in value.parts]
        if None in parts or (value.op == "and" and len(parts) != 1):
            return None
        return "|".join(f"(?:{p})" for p in parts)
    return None


def _patterns(request: _Constraint, patterns: tuple[Pattern, ...]) -> None:
    for pattern in patterns:
        regex = plain_regex("pattern", pattern)
        if regex is None:
            request.unsupported.append(f"{pattern.label} (it needs the intersection or "
                                       "complement of regexes)")
        else:
            request.shapes.append(("regex", pattern.label, regex))


def _refuse_patterns(request: _Constraint, patterns: tuple[Pattern, ...]) -> None:
    request.unsupported += [p.label for p in patterns]


def _min_tokens(request: _Constraint, least: int) -> None:
    request.extra["min_tokens"] = least  # vLLM ignores EOS and stop strings until then


def _json_response_format(request: _Constraint, schema: str) -> None:
    request.response_format = {"type": "json_schema", "json_schema": {
        "name": "response", "schema": json.loads(schema), "strict": True}}


# Per dialect, how each ConstraintSpec field travels (None: it needs nothing here).
# `max_tokens` (where's len(TOKENS(...)) bound) is already folded into
# GenerateOptions.max_tokens, which the request sends as max_tokens.
_FIELDS: dict[str, dict[str, Optional[Callable[[_Constraint, Any], None]]]] = {
    "vllm": {
        "stops_at": _keep("stops_at"),
        "stops_before": _keep("stops_before"),
        "choices": _shape("choice", "choices", list),
        "regexes": _regexes,
        "integer": _shape("regex", "type=int", lambda _: INT_REGEX),
        "json_schema": _shape("json", "json_schema", json.loads),
        "max_chars": _shape("regex", "len(RESPONSE)", lambda n: f"[\\s\\S]{{0,{n}}}"),
        "max_tokens": None,
        "excludes": _refuse("not ... in RESPONSE"),
        "patterns": _patterns,
        "min_tokens": _min_tokens,
        "not_tokens": _refuse("len(TOKENS(...)) != n (only in-process models, local: and "
                              "llama.cpp:, enforce it)"),
    },
    "openai": {
        "stops_at": _refuse("stops_at (OpenAI drops the stop string; use stops_before)"),
        "stops_before": _keep("stops_before"),
        "choices": _refuse("choices"),
        "regexes": _refuse("regex"),
        "integer": _refuse("type=int"),
        "json_schema": _json_response_format,
        "max_chars": _refuse("len(RESPONSE)"),
        "max_tokens": None,
        "excludes": _refuse("not ... in RESPONSE"),
        "patterns": _refuse_patterns,
        "min_tokens": _refuse("a lower token bound (min_tokens, len(TOKENS(...)) > n)"),
        "not_tokens": _refuse("len(TOKENS(...)) != n"),
    },
}


def to_server_params(spec: ConstraintSpec, dialect: str = "vllm") -> dict[str, Any]:
    """Keyword arguments for the OpenAI client's `create` that make the server enforce `spec`.

    Returns e.g. `{"stop": [...], "extra_body": {"structured_outputs": {"regex": ...}}}`
    for vLLM, or `{"stop": [...], "response_format": {...}}` for OpenAI.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown server dialect {dialect!r}; accepted: {', '.join(DIALECTS)}")
    table = _FIELDS[dialect]
    request = _Constraint()
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if value == field.default:
            continue
        if field.name not in table:  # a new constraint field nobody mapped: never drop it
            raise ValueError(f"the constraint {field.name!r} has no mapping onto "
                             f"{dialect}-style servers; refused rather than left unenforced")
        handler = table[field.name]
        if handler is not None:
            handler(request, value)
    return _vllm(request) if dialect == "vllm" else _openai(request)


def _vllm(request: _Constraint) -> dict[str, Any]:
    if request.unsupported:
        raise ValueError(f"a vLLM server cannot enforce {', '.join(request.unsupported)}; "
                         "use a local model")
    params: dict[str, Any] = {}
    extra: dict[str, Any] = dict(request.extra)
    if request.stops_at and request.stops_before:
        raise ValueError("a vLLM server keeps all stop strings or drops them all: use "
                         "stops_at or stops_before, not both")
    if request.stops_at or request.stops_before:
        params["stop"] = list(request.stops_at + request.stops_before)
        if request.stops_at:
            extra["include_stop_str_in_output"] = True
    if len(request.shapes) > 1:
        raise ValueError(f"a vLLM server cannot enforce "
                         f"{' and '.join(s[1] for s in request.shapes)} together "
                         "(structured_outputs takes one regex, choice or json); keep one, "
                         "or use a local model")
    if request.shapes:
        key, _, value = request.shapes[0]
        extra["structured_outputs"] = {key: value}
    if extra:
        params["extra_body"] = extra
    return params


def _openai(request: _Constraint) -> dict[str, Any]:
    if request.unsupported:
        raise ValueError(f"OpenAI's API cannot enforce {', '.join(request.unsupported)}; "
                         "use a vLLM server or a local model")
    if len(request.stops_before) > OPENAI_MAX_STOPS:
        raise ValueError(f"OpenAI's API takes at most {OPENAI_MAX_STOPS} stop strings, "
                         f"got {len(request.stops_before)}")
    params: dict[str, Any] = {}
    if request.stops_before:
        params["stop"] = list(request.stops_before)
    if request.response_format is not None:
        params["response_format"] = request.response_format
    return params
