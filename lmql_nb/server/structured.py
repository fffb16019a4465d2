"""`structured_outputs` (vLLM's spelling): validated here, wired to the engine here.

vLLM takes `{"regex": str}`, `{"choice": [str, ...]}`, `{"json": schema}` or
`{"grammar": str}`. The engine's `generate` options that implement them are named
`regex=`, `choices=` and `json_schema=` (and `grammar=`, which it has not yet); a kind
whose option the engine does not accept is answered with a 400 "not supported yet". This
is the only place that maps one to the other.
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import bad_request

#: structured_outputs key -> the engine's generate option
ENGINE_OPTIONS = {"regex": "regex", "choice": "choices", "json": "json_schema",
                  "grammar": "grammar"}


def _engine_accepts(option: str) -> bool:
    """True if the engine's `generate` takes `option` (constrained generation is new)."""
    try:
        from ..constraints import CONSTRAINT_KEYS
    except ImportError:
        return False
    return option in CONSTRAINT_KEYS


def _check_value(kind: str, value: Any) -> Any:
    if kind in ("regex", "grammar"):
        if not isinstance(value, str) or not value:
            raise bad_request(f"structured_outputs.{kind} must be a non-empty string",
                              "structured_outputs")
    elif kind == "choice":
        if (not isinstance(value, list) or not value
                or not all(isinstance(c, str) and c for c in value)):
            raise bad_request("structured_outputs.choice must be a non-empty list of "
                              "non-empty strings", "structured_outputs")
        value = list(value)
    elif kind == "json":
        if isinstance(value, str):
            import json

            from .body import check_depth

            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise bad_request("structured_outputs.json must be a JSON schema (an object "
                                  "or a string holding one)", "structured_outputs") from None
            check_depth(value, "structured_outputs.json")
        if not isinstance(value, dict):
            raise bad_request("structured_outputs.json must be a JSON schema object",
                              "structured_outputs")
    return value


def generate_options(spec: Optional[dict]) -> dict:
    """The engine `generate` options for a `structured_outputs` object (may be {})."""
    if not spec:
        return {}
    kinds = [k for k in spec if spec[k] is not None]
    unknown = [k for k in kinds if k not in ENGINE_OPTIONS]
    if unknown or len(kinds) != 1:
        raise bad_request("structured_outputs must hold exactly one of "
                          f"{', '.join(ENGINE_OPTIONS)}; got {', '.join(kinds) or 'none'}",
                          "structured_outputs")
    kind = kinds[0]
    value = _check_value(kind, spec[kind])
    option = ENGINE_OPTIONS[kind]
    if not _engine_accepts(option):
        raise bad_request(f"structured_outputs.{kind} is not supported yet by this server "
                          "(the engine has no constrained generation for it yet)",
                          "structured_outputs")
    return {option: value}
