"""`structured_outputs` (vLLM's spelling): validated here, wired to the engine here.

vLLM takes one of `{"regex": str}`, `{"choice": [str, ...]}`, `{"json": schema}` (and
`{"grammar": str}`, which lmql_nb does not). Which `generate` keyword answers each key is
declared by the keyword itself (`Keyword.structured_output` in
`lmql_nb.constraints.keywords`: `regex=`, `choices=`, `json_schema=`); a key no keyword
declares is answered with a 400 naming the accepted ones.
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import bad_request


def engine_options() -> dict[str, str]:
    """structured_outputs key -> the `generate` keyword that enforces it (the registry's)."""
    from ..constraints.keywords import keywords

    return {k.structured_output: k.name for k in keywords() if k.structured_output}


def _check_value(kind: str, value: Any) -> Any:
    if kind == "regex":
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
    options = engine_options()
    kinds = [k for k in spec if spec[k] is not None]
    unknown = [k for k in kinds if k not in options]
    if unknown or len(kinds) != 1:
        raise bad_request("structured_outputs must hold exactly one of "
                          f"{', '.join(options)}; got {', '.join(kinds) or 'none'}",
                          "structured_outputs")
    kind = kinds[0]
    return {options[kind]: _check_value(kind, spec[kind])}
