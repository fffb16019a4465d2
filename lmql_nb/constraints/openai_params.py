"""A `ConstraintSpec` as request parameters for an OpenAI-compatible server.

Two flavours of server:

- "vllm": vLLM's OpenAI server. Stop strings go in `stop` (with vLLM's
  `include_stop_str_in_output` for `stops_at`); the text's form goes in
  `extra_body={"structured_outputs": {...}}` as one of `regex`, `choice` or `json`.
- "openai": OpenAI's API. `stop` (which drops the stop string, so `stops_before` only,
  at most 4) and, for a JSON schema, `response_format` (strict JSON schema; chat
  completions only).

What a server cannot enforce raises ValueError naming it: nothing is silently left out.
Token bounds are not mapped here: `where`'s `len(TOKENS(...))` is already folded into
`GenerateOptions.max_tokens`, which the backend sends as `max_tokens`. A vLLM server
applies stop strings and the structured output independently (the stop cuts the text
wherever it appears), whereas a local model admits a stop only where the text is complete.
"""

from __future__ import annotations

import json
from typing import Any

from .grammar import INT_REGEX
from .spec import ConstraintSpec

FLAVOURS = ("vllm", "openai")
OPENAI_MAX_STOPS = 4


def to_server_params(spec: ConstraintSpec, flavour: str = "vllm") -> dict[str, Any]:
    """Keyword arguments for the OpenAI client's `create` that make the server enforce `spec`.

    Returns e.g. `{"stop": [...], "extra_body": {"structured_outputs": {"regex": ...}}}`
    for vLLM, or `{"stop": [...], "response_format": {...}}` for OpenAI.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown server flavour {flavour!r}; accepted: {', '.join(FLAVOURS)}")
    if flavour == "vllm":
        return _vllm(spec)
    return _openai(spec)


def _vllm(spec: ConstraintSpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if spec.stops_at and spec.stops_before:
        raise ValueError("a vLLM server keeps all stop strings or drops them all: use "
                         "stops_at or stops_before, not both")
    if spec.stops:
        params["stop"] = list(spec.stops)
        if spec.stops_at:
            extra["include_stop_str_in_output"] = True
    shapes: list[tuple[str, str, Any]] = [("regex", f"regex {r!r}", r) for r in spec.regexes]
    if spec.choices is not None:
        shapes.append(("choice", "choices", list(spec.choices)))
    if spec.integer:
        shapes.append(("regex", "type=int", INT_REGEX))
    if spec.max_chars is not None:
        shapes.append(("regex", "len(RESPONSE)", f"[\\s\\S]{{0,{spec.max_chars}}}"))
    if spec.json_schema is not None:
        shapes.append(("json", "json_schema", json.loads(spec.json_schema)))
    if len(shapes) > 1:
        raise ValueError(f"a vLLM server cannot enforce {' and '.join(s[1] for s in shapes)} "
                         "together (structured_outputs takes one regex, choice or json); "
                         "keep one, or use a local model")
    if shapes:
        key, _, value = shapes[0]
        extra["structured_outputs"] = {key: value}
    if extra:
        params["extra_body"] = extra
    return params


def _openai(spec: ConstraintSpec) -> dict[str, Any]:
    unsupported = [name for name, present in (
        ("stops_at (OpenAI drops the stop string; use stops_before)", bool(spec.stops_at)),
        ("regex", bool(spec.regexes)), ("choices", spec.choices is not None),
        ("type=int", spec.integer), ("len(RESPONSE)", spec.max_chars is not None)) if present]
    if unsupported:
        raise ValueError(f"OpenAI's API cannot enforce {', '.join(unsupported)}; use a vLLM "
                         "server or a local model")
    if len(spec.stops_before) > OPENAI_MAX_STOPS:
        raise ValueError(f"OpenAI's API takes at most {OPENAI_MAX_STOPS} stop strings, "
                         f"got {len(spec.stops_before)}")
    params: dict[str, Any] = {}
    if spec.stops_before:
        params["stop"] = list(spec.stops_before)
    if spec.json_schema is not None:
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "response", "schema": json.loads(spec.json_schema), "strict": True}}
    return params
