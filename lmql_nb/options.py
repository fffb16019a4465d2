"""Validation of the keyword options that `generate` and `score` accept.

Everything a user can pass is checked here, before any model is loaded, so that a typo
or an out-of-range number fails at once with a message naming what is accepted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from .constraints import CONSTRAINT_KEYS, ConstraintSpec, parse_constraints
from .text import check_text

DECODERS = ("argmax", "sample", "beam")
MAX_TOP_LOGPROBS = 20


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """The validated options of one `generate` call.

    `constraint` gathers `stops_at`, `stops_before`, `choices`, `regex`, `type`,
    `json_schema` and `where` (see `lmql_nb.constraints`); a `where` token bound is
    folded into `max_tokens`.
    """

    max_tokens: Optional[int] = None
    decoder: str = "argmax"
    n: int = 1
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    seed: Optional[int] = None
    top_logprobs: int = 0
    return_details: bool = False
    cache: bool = True
    constraint: Optional[ConstraintSpec] = None

    @property
    def deterministic(self) -> bool:
        """True when the same call always gives the same result (safe to cache)."""
        return self.decoder != "sample" or self.seed is not None

    def cache_key(self) -> tuple:
        """The options that change a result (not how it is returned)."""
        return (self.max_tokens, self.decoder, self.n, self.temperature, self.top_k,
                self.top_p, self.seed, self.top_logprobs, self.constraint)


@dataclasses.dataclass(frozen=True)
class ScoreOptions:
    """The validated options of one `score` call."""

    cache: bool = True


#: every keyword `generate` accepts
GENERATE_KEYWORDS = ({f.name for f in dataclasses.fields(GenerateOptions)} - {"constraint"}
                     | set(CONSTRAINT_KEYS))
_SCORE_KEYS = {f.name for f in dataclasses.fields(ScoreOptions)}


def _unknown(kind: str, unknown: set, accepted: set) -> TypeError:
    names = ", ".join(sorted(repr(k) for k in unknown))
    return TypeError(f"{kind}() got unknown option(s) {names}; accepted options are: "
                     f"{', '.join(sorted(accepted))}")


def _check_int(name: str, value: Any, minimum: int, maximum: Optional[int] = None,
               allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        accepted = "an int" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)


def check_prompt(prompt: Any, name: str = "prompt") -> str:
    """Return `prompt` if it is a valid Unicode string, else raise naming what is wrong."""
    if not isinstance(prompt, str):
        raise TypeError(f"{name} must be a str, got {type(prompt).__name__}")
    return check_text(prompt, name)


def check_values(values: Any) -> list[str]:
    """Normalise `score`'s values to a non-empty list of strings."""
    if isinstance(values, str):
        return [values]
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"values must be a str or a list of str, got {type(values).__name__}")
    if not values:
        raise ValueError("values must not be empty: pass a str or a non-empty list of str")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"values[{i}] must be a str, got {type(value).__name__}")
        if not value:
            raise ValueError(f"values[{i}] is empty: every value needs at least one character")
        check_text(value, f"values[{i}]")
    return list(values)


def parse_generate_options(max_tokens: Any = None, **kwargs: Any) -> GenerateOptions:
    """Check `generate`'s keyword options and return them as a `GenerateOptions`."""
    unknown = set(kwargs) - GENERATE_KEYWORDS
    if unknown:
        raise _unknown("generate", unknown, GENERATE_KEYWORDS)
    _check_int("max_tokens", max_tokens, 0, allow_none=True)
    decoder = kwargs.get("decoder")
    if decoder is None:  # LMQL's rule: a non-zero temperature without a decoder samples
        temperature = kwargs.get("temperature")
        decoder = "sample" if temperature and _check_number("temperature", temperature) else "argmax"
        if decoder == "argmax":
            kwargs = {k: v for k, v in kwargs.items() if k != "temperature"}
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; accepted decoders are: "
                         f"{', '.join(DECODERS)}")
    n = kwargs.get("n", 1)
    _check_int("n", n, 1)
    if n > 1 and decoder == "argmax":
        raise ValueError(f"n={n} needs decoder='sample' or decoder='beam'; "
                         "decoder='argmax' yields a single sequence")
    temperature = _check_number("temperature", kwargs.get("temperature", 1.0))
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    sampling_only = [k for k in ("temperature", "top_k", "top_p", "seed") if k in kwargs]
    if decoder != "sample" and sampling_only:
        raise ValueError(f"{', '.join(sampling_only)} only apply to decoder='sample' "
                         f"(decoder is {decoder!r}); pass decoder='sample' to sample")
    top_k = kwargs.get("top_k")
    _check_int("top_k", top_k, 1, allow_none=True)
    top_p = kwargs.get("top_p")
    if top_p is not None:
        top_p = _check_number("top_p", top_p)
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    seed = kwargs.get("seed")
    _check_int("seed", seed, 0, allow_none=True)
    return_details = kwargs.get("return_details", False)
    top_logprobs = kwargs.get("top_logprobs", 5 if return_details else 0)
    _check_int("top_logprobs", top_logprobs, 0, MAX_TOP_LOGPROBS)
    for flag in ("return_details", "cache"):
        if not isinstance(kwargs.get(flag, True), bool):
            raise TypeError(f"{flag} must be True or False, got {kwargs[flag]!r}")
    constraint = parse_constraints(kwargs)
    if constraint is not None:
        if constraint.max_tokens is not None:  # where's len(TOKENS(RESPONSE)) < n
            max_tokens = min(m for m in (max_tokens, constraint.max_tokens) if m is not None)
        if not constraint.active:
            constraint = None
    return GenerateOptions(
        max_tokens=max_tokens, decoder=decoder, n=n, temperature=temperature, top_k=top_k,
        top_p=top_p, seed=seed, top_logprobs=top_logprobs, return_details=return_details,
        cache=kwargs.get("cache", True), constraint=constraint,
    )


def parse_score_options(**kwargs: Any) -> ScoreOptions:
    """Check `score`'s keyword options and return them as a `ScoreOptions`."""
    unknown = set(kwargs) - _SCORE_KEYS
    if unknown:
        raise _unknown("score", unknown, _SCORE_KEYS)
    cache = kwargs.get("cache", True)
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {cache!r}")
    return ScoreOptions(cache=cache)
