"""Validation of the keyword options that `generate` and `score` accept.

Everything a user can pass is checked here, before any model is loaded, so that a typo
or an out-of-range number fails at once with a message naming what is accepted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

# up a layer: generate's keywords include the constraint keywords (stops_at, regex, where,
# ...), which the constraints layer's registry defines and parses; that registry builds on
# core (validation, text, results), so it cannot sit below it
from ..constraints import CONSTRAINT_KEYS, ConstraintSpec, parse_constraints
from .text import check_text
from .validation import Options, Rule, option, unknown_options

#: the decoders of `generate` (the magics, the CLI and the server too); each hole of a
#: query program is one such call
DECODERS = ("argmax", "sample", "beam", "beam_sample")
#: the decoders of query programs: generate's, run over whole programs, and LMQL's
#: searches over the program's holes (see query/runtime.py)
QUERY_DECODERS = DECODERS + ("var", "beam_var", "best_k")
#: the options that apply to the sampling decoders alone
SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "seed")
#: each decoder's own arguments (the options that belong to some decoders only)
DECODER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "argmax": (),
    "sample": ("n",) + SAMPLING_OPTIONS,
    "beam": ("n",),
    "beam_sample": ("n",) + SAMPLING_OPTIONS,
    "var": ("b", "n") + SAMPLING_OPTIONS,
    "beam_var": ("n",),
    "best_k": ("k", "n") + SAMPLING_OPTIONS,
}
#: what each hole of a program runs under a program-level search (`generate`'s decoder)
HOLE_DECODERS = {"var": "sample", "beam_var": "beam", "best_k": "sample"}
#: LMQL's "additional decoding parameters": penalties on tokens already present, for
#: every decoder (`lmql_nb.backends.engine.penalties` applies them)
PENALTY_OPTIONS = ("repetition_penalty", "frequency_penalty", "presence_penalty")
#: each penalty's value that changes nothing
NEUTRAL_PENALTIES = {"repetition_penalty": 1.0, "frequency_penalty": 0.0,
                     "presence_penalty": 0.0}
#: the options some decoders take and others do not
DECODER_OPTIONS = ("n", "b", "k") + SAMPLING_OPTIONS
#: the decoders that draw at random (a result is reproducible only with a seed)
SAMPLING_DECODERS = tuple(d for d, taken in DECODER_ARGUMENTS.items() if "seed" in taken)
MAX_TOP_LOGPROBS = 20


@dataclasses.dataclass(frozen=True)
class GenerateOptions(Options):
    """The validated options of one `generate` call (each field's rule and meaning are
    declared here once; the magics, the CLI and the server check with the same rules).

    `constraint` gathers `stops_at`, `stops_before`, `choices`, `regex`, `type`,
    `json_schema`, `starts_with`, `min_tokens` and `where` (see
    `lmql_nb.constraints.keywords`); a `where` upper token bound is folded into `max_tokens`.
    """

    max_tokens: Optional[int] = option(
        None, "tokens to generate at most (None: until end-of-sequence or the context is "
        "full)", "int", minimum=0, optional=True)
    decoder: str = option("argmax", "decoding method", "choice", choices=DECODERS)
    n: int = option(1, "sequences to return (decoder='sample', 'beam' or 'beam_sample')",
                    "int", minimum=1)
    temperature: float = option(1.0, "sampling temperature (decoder='sample' or "
                                "'beam_sample')", "number", minimum=0)
    top_k: Optional[int] = option(None, "sample from the k most likely tokens", "int",
                                  minimum=1, optional=True)
    top_p: Optional[float] = option(None, "sample from the smallest set of tokens whose "
                                    "probability is at least p", "number", minimum=0,
                                    maximum=1, open_minimum=True, optional=True)
    seed: Optional[int] = option(None, "random seed for sampling", "int", minimum=0,
                                 optional=True)
    repetition_penalty: float = option(
        1.0, "divide the logit of a token already in the prompt or the output by this if "
        "positive, multiply it if negative (HuggingFace's, Keskar et al. 2019; 1.0: none)",
        "number", minimum=0, open_minimum=True)
    frequency_penalty: float = option(
        0.0, "subtract this times a token's count in the output from its logit (OpenAI's; "
        "0: none)", "number", minimum=-2, maximum=2)
    presence_penalty: float = option(
        0.0, "subtract this from the logit of a token present in the output (OpenAI's; "
        "0: none)", "number", minimum=-2, maximum=2)
    top_logprobs: int = option(0, "alternatives returned per token (default 5 with "
                               "return_details)", "int", minimum=0, maximum=MAX_TOP_LOGPROBS)
    return_details: bool = option(False, "return Generation objects (per-token data) "
                                  "instead of text", "bool")
    cache: bool = option(True, "use the result cache (False: compute afresh)", "bool")
    constraint: Optional[ConstraintSpec] = None

    @property
    def deterministic(self) -> bool:
        """True when the same call always gives the same result (safe to cache)."""
        return self.decoder not in SAMPLING_DECODERS or self.seed is not None

    @property
    def penalties(self) -> dict[str, float]:
        """The penalties that change something (see `PENALTY_OPTIONS`), by name."""
        return {name: getattr(self, name) for name, neutral in NEUTRAL_PENALTIES.items()
                if getattr(self, name) != neutral}

    def cache_key(self) -> tuple:
        """The options that change a result (not how it is returned)."""
        return (self.max_tokens, self.decoder, self.n, self.temperature, self.top_k,
                self.top_p, self.seed, self.top_logprobs, self.constraint,
                self.repetition_penalty, self.frequency_penalty, self.presence_penalty)


@dataclasses.dataclass(frozen=True)
class ScoreOptions(Options):
    """The validated options of one `score` call."""

    cache: bool = option(True, "use the result cache (False: compute afresh)", "bool")


#: the rule of each of `generate`'s options, by name (the magics' and the server's checks)
GENERATE_RULES: dict[str, Rule] = {f.name: f.metadata["rule"] for f in GenerateOptions.fields()}
#: the one-line description of each of `generate`'s options, by name
GENERATE_HELP: dict[str, str] = {f.name: f.metadata["description"]
                                 for f in GenerateOptions.fields()}

#: LMQL's default bound on a query program's total tokens (prompt and holes)
DEFAULT_MAX_LEN = 2048
#: the rules of a query program's options beyond generate's (its decoder options are
#: generate's): the query functions and the `%%lmql` magic check with these
QUERY_RULES: dict[str, Rule] = {
    "max_len": Rule("int", minimum=1),
    "decoder": Rule("choice", choices=QUERY_DECODERS),
    "b": Rule("int", minimum=1),  # var: the samples each program state draws per hole
    "k": Rule("int", minimum=1),  # best_k: the results kept of n samples
}


def generate_keywords() -> set[str]:
    """Every keyword `generate` accepts: its options and the constraint keywords
    registered now."""
    return set(GENERATE_RULES) | set(CONSTRAINT_KEYS)


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


def default_decoder(temperature: Any) -> str:
    """LMQL's rule for a call that names no decoder: a non-zero temperature samples."""
    return "sample" if temperature else "argmax"


def applies(option: str, decoder: Any) -> bool:
    """Whether `option` means something to `decoder` (`DECODER_ARGUMENTS`; the options
    that are no decoder's own apply to all)."""
    return option not in DECODER_OPTIONS or option in DECODER_ARGUMENTS.get(decoder, ())


def check_decoder(decoder: Any, n: int, given: Any = (),
                  accepted: tuple[str, ...] = DECODERS) -> None:
    """The decoder rules, for `generate` (`accepted`: its decoders) and query programs
    (`QUERY_DECODERS`) alike: a known decoder, n > 1 only where the decoder gives several
    sequences, and the decoder options passed (`given` names them) only where they
    apply."""
    if decoder not in accepted:
        raise ValueError(f"unknown decoder {decoder!r}; accepted decoders are: "
                         f"{', '.join(accepted)}")
    several = [d for d in accepted if applies("n", d)]
    if n > 1 and not applies("n", decoder):
        raise ValueError(f"n={n} needs a decoder that gives several sequences "
                         f"({', '.join(several)}); decoder={decoder!r} gives a single sequence")
    misplaced = [k for k in DECODER_OPTIONS
                 if k != "n" and k in given and not applies(k, decoder)]
    if misplaced:
        takes = ", ".join(DECODER_ARGUMENTS[decoder]) or "none of them"
        users = sorted({d for k in misplaced for d in accepted if applies(k, d)},
                       key=accepted.index)
        names, one = ", ".join(misplaced), len(misplaced) == 1
        raise ValueError(f"{names} {'does' if one else 'do'} not apply to "
                         f"decoder={decoder!r}, which takes {takes} of the decoder options "
                         f"({', '.join(DECODER_OPTIONS)}); {names} "
                         f"{'applies' if one else 'apply'} to decoder "
                         f"{', '.join(repr(d) for d in users)}"
                         + ("; pass decoder='sample' to sample"
                            if set(misplaced) & set(SAMPLING_OPTIONS) else ""))


def parse_generate_options(max_tokens: Any = None, **kwargs: Any) -> GenerateOptions:
    """Check `generate`'s keyword options and return them as a `GenerateOptions`."""
    accepted = generate_keywords()
    unknown = set(kwargs) - accepted
    if unknown:
        raise unknown_options("generate()", unknown, accepted)
    if kwargs.get("decoder") is None:  # LMQL's rule: a non-zero temperature samples
        kwargs.pop("decoder", None)
        temperature = kwargs.get("temperature")
        if default_decoder(temperature) == "sample" and \
                GENERATE_RULES["temperature"].check("temperature", temperature):
            kwargs["decoder"] = "sample"
        else:
            kwargs.pop("temperature", None)
    given = {name: kwargs[name] for name in GENERATE_RULES if name in kwargs}
    if max_tokens is not None:
        given["max_tokens"] = max_tokens
    values = {name: GENERATE_RULES[name].check(name, value) for name, value in given.items()}
    check_decoder(values.get("decoder", "argmax"), values.get("n", 1), kwargs)
    if "top_logprobs" not in values:
        values["top_logprobs"] = 5 if values.get("return_details") else 0
    constraint = parse_constraints(kwargs)
    if constraint is not None:
        if constraint.max_tokens is not None:  # where's len(TOKENS(RESPONSE)) < n
            limit = values.get("max_tokens")
            values["max_tokens"] = min(m for m in (limit, constraint.max_tokens)
                                       if m is not None)
        least, most = constraint.min_tokens, values.get("max_tokens")
        if least and most is not None and least > most:
            raise ValueError(f"at least {least} tokens (min_tokens, or a len(TOKENS(...)) "
                             f"lower bound) do not fit in max_tokens={most}")
        if not constraint.active:
            constraint = None
    return GenerateOptions(**values, constraint=constraint)


def parse_score_options(**kwargs: Any) -> ScoreOptions:
    """Check `score`'s keyword options and return them as a `ScoreOptions`."""
    return ScoreOptions.parse(kwargs, "score()")
