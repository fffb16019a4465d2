"""The keyword options a query call takes besides the program's own arguments, declared
once: each is a field of `Settings` (a run's options, resolved) with its type, its
default, its help, the rule that checks it (core's, where it has one) and, where it has
one, its flag on `%%lmql`'s line. What reads the options comes from here: `OPTIONS` (the
query functions check calls against it, nested queries refuse it), `Settings`, and the
flags of `%%lmql` (`lmql_nb.notebook.magics.arguments`). Adding an option is one field.

The flag of option `name` is `--name` with dashes for underscores (`-n` for a one-letter
name), with `Flag.short` beside it (`-m, --model`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Sequence, Union

from ..core.options import (DEFAULT_MAX_LEN, GENERATE_HELP, GENERATE_RULES, QUERY_DECODERS,
                            QUERY_RULES, applies)
from ..core.validation import Rule

if TYPE_CHECKING:
    from ..generations.llm import LLM
    from .trace import EventCallback

#: what a flag's text stands for: a value its option's rule parses and checks, a model id
#: (the magic loads the model), or a notebook variable's name (the magic reads it)
FLAG_VALUES = ("value", "model", "variable")


@dataclasses.dataclass(frozen=True)
class Flag:
    """An option's flag on `%%lmql`'s line: `metavar` (default: the rule's choices in
    braces), a `short` spelling beside the long one, and what its text `gives` (one of
    `FLAG_VALUES`)."""

    metavar: str = ""
    short: str = ""
    gives: str = "value"

    def __post_init__(self) -> None:
        if self.gives not in FLAG_VALUES:
            raise ValueError(f"Flag(gives={self.gives!r}): accepted are {', '.join(FLAG_VALUES)}")


@dataclasses.dataclass(frozen=True)
class QueryOption:
    """One declared query option, as `declared()` reads it from a field of `Settings`."""

    name: str
    help: str
    default: Any
    rule: Optional[Rule] = None
    flag: Optional[Flag] = None
    transport: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        """The option's spellings on `%%lmql`'s line (none without a `flag`)."""
        if self.flag is None:
            return ()
        long = f"-{self.name}" if len(self.name) == 1 else "--" + self.name.replace("_", "-")
        return (self.flag.short, long) if self.flag.short else (long,)


def query_option(default: Any, help: str, *, rule: Optional[Rule] = None,
                 flag: Optional[Flag] = None, transport: bool = False) -> Any:
    """A field of `Settings`: one query option (`dataclasses.MISSING`: no default). A
    `flag` needs a `rule` where its text gives a value."""
    if flag is not None and flag.gives == "value" and rule is None:
        raise ValueError("a query option's flag that gives a value needs the option's rule")
    return dataclasses.field(default=default, metadata={
        "help": help, "rule": rule, "flag": flag, "transport": transport})


def _listed(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + f" or {items[-1]}" if len(items) > 1 else "".join(items)


_SEVERAL = [d for d in QUERY_DECODERS if applies("n", d)]
_TRANSPORT = ("LMQL's runtime parameter for its OpenAI transport (language-decoding.md, "
              "\"Runtime Parameters\"): accepted, with a warning that it changes nothing in "
              "lmql_nb")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to run a program: every query option, resolved from the program's clauses,
    the decorator and the call (see `QueryFunction._settings`). The runtime reads the
    model and the decoder with its options; `verbose` and `output_writer` are folded into
    `on_event` and `inputs` is checked by then, and the options it does not read
    (`certificate`, `chunksize`, the transport options) were acted on before the run."""

    model: LLM = query_option(dataclasses.MISSING, "model id (default: %config "
                              "LmqlMagics.model, else lmql_nb's default model)",
                              flag=Flag("ID", short="-m", gives="model"))
    decoder: str = query_option("argmax", "decoding method (the program's decoder clause "
                                "takes the decoder's arguments: var(b=2), best_k(k=2))",
                                rule=QUERY_RULES["decoder"], flag=Flag())
    n: int = query_option(1, f"number of sequences (with --decoder {_listed(_SEVERAL)})",
                          rule=GENERATE_RULES["n"], flag=Flag("N"))
    b: int = query_option(2, "var: the values each program state samples per hole",
                          rule=QUERY_RULES["b"])
    k: int = query_option(1, "best_k: the most likely of the n sampled executions kept",
                          rule=QUERY_RULES["k"])
    temperature: Optional[float] = query_option(None, "sampling temperature",
                                                rule=GENERATE_RULES["temperature"],
                                                flag=Flag("T"))
    top_k: Optional[int] = query_option(None, GENERATE_HELP["top_k"],
                                        rule=GENERATE_RULES["top_k"])
    top_p: Optional[float] = query_option(None, GENERATE_HELP["top_p"],
                                          rule=GENERATE_RULES["top_p"])
    seed: Optional[int] = query_option(None, "random seed for sampling",
                                       rule=GENERATE_RULES["seed"], flag=Flag("S"))
    repetition_penalty: float = query_option(1.0, GENERATE_HELP["repetition_penalty"],
                                             rule=GENERATE_RULES["repetition_penalty"],
                                             flag=Flag("P"))
    frequency_penalty: float = query_option(0.0, GENERATE_HELP["frequency_penalty"],
                                            rule=GENERATE_RULES["frequency_penalty"],
                                            flag=Flag("F"))
    presence_penalty: float = query_option(0.0, GENERATE_HELP["presence_penalty"],
                                           rule=GENERATE_RULES["presence_penalty"],
                                           flag=Flag("P"))
    max_len: int = query_option(DEFAULT_MAX_LEN, "the program's length in tokens at most "
                                "(prompt and holes: LMQL's max_len)",
                                rule=QUERY_RULES["max_len"], flag=Flag("N"))
    top_logprobs: int = query_option(5, "alternatives per token shown on hover (default: "
                                     "%config LmqlMagics.top_logprobs)",
                                     rule=GENERATE_RULES["top_logprobs"], flag=Flag("K"))
    cache: bool = query_option(True, GENERATE_HELP["cache"], rule=GENERATE_RULES["cache"])
    on_event: Optional[EventCallback] = query_option(
        None, "callback(sequence_index, event): the run's trace as it grows")
    verbose: bool = query_option(False, "print one line per model call as it finishes")
    chunksize: Optional[int] = query_option(
        None, "LMQL's tokens between constraint checks: accepted, with a warning that it "
        "changes nothing (lmql_nb checks constraints at every token)")
    output_writer: Optional[EventCallback] = query_option(
        None, "lmql_nb.stream(...), lmql_nb.printing, lmql_nb.silent or a "
        "callable(sequence_index, event): follows the run's events beside on_event")
    #: what `await input()` returns: the user's messages in order (a chat that asks
    #: for more ends there), or `ask(prompt)`, a coroutine function whose None ends it
    inputs: Optional[Union[Sequence[str], Callable[[str], Awaitable[Optional[str]]]]] = \
        query_option(None, "the chat user's messages for `await input()`: a list variable "
                     "(default: asked for in an input box inside the trace view, one per "
                     "turn)", flag=Flag("VAR", gives="variable"))
    certificate: Any = query_option(False, "an inference certificate of the run: True "
                                    "(print it), a file path or a callable")
    chunk_timeout: Optional[float] = query_option(None, _TRANSPORT, transport=True)
    openai_nonstop: Optional[bool] = query_option(None, _TRANSPORT, transport=True)

    @property
    def results(self) -> int:
        """How many outputs the decoder gives at most (a list when more than one)."""
        return self.k if self.decoder == "best_k" else self.n


def declared(declaration: type = Settings) -> tuple[QueryOption, ...]:
    """The query options `declaration` (`Settings`, or a dataclass that extends it)
    declares, in order."""
    return tuple(QueryOption(f.name, f.metadata["help"], f.default, f.metadata["rule"],
                             f.metadata["flag"], f.metadata["transport"])
                 for f in dataclasses.fields(declaration))


#: the names of the query options, in declaration order
OPTIONS = tuple(option.name for option in declared())
#: each option's default (the model's: none, it is resolved at each run)
DEFAULTS = {option.name: option.default for option in declared()
            if option.default is not dataclasses.MISSING}
#: the options of LMQL's OpenAI transport (accepted, with a warning)
TRANSPORT_OPTIONS = tuple(option.name for option in declared() if option.transport)
