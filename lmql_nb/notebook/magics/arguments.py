"""The options of the magics, declared once.

Each option is one `Option` line in `GENERATE_OPTIONS`, `QUERY_OPTIONS` or
`SCORE_OPTIONS` (options several magics share are named once); an option with
`to_model=True` is passed to `generate`/`score`/the query program under its `dest` name
when given. The constraint flags (`--stops-at`, `--regex`, `--where`...) are not listed
here: each constraint keyword declares its own (`lmql_nb.constraints.keywords`), and
`generate_options()` reads them when a magic parses its line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, NoReturn, Optional, Sequence

from ...errors import MagicUsageError
from ...core.options import DECODERS, GENERATE_RULES, QUERY_DECODERS, QUERY_RULES
from ...core.scoring import AGGREGATIONS
from ...core.validation import Rule

FORMATS = ("widget", "text", "json")


def _checked(name: str, rule: Optional[Rule] = None) -> Callable[[str], Any]:
    """argparse's `type=` for `generate`'s option `name`: its declared rule, its words."""
    return (rule or GENERATE_RULES[name]).argparse_type(name)


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse's `type=` for a keyword's flag: its parser, its words."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _identifier(text: str) -> str:
    if not text.isidentifier():
        raise argparse.ArgumentTypeError(f"expected a Python variable name, got {text!r}")
    return text


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option of a magic."""

    flags: tuple[str, ...]
    dest: str
    help: str
    type: Callable[[str], Any] = str
    choices: Optional[Sequence[str]] = None
    to_model: bool = True  # passed on to generate()/score(); else used by the magic
    metavar: Optional[str] = None
    repeatable: bool = False  # may be given several times; the value is then a list
    switch: bool = False  # takes no value: True when given


MODEL = Option(("-m", "--model"), "model", "model id (default: %config LmqlMagics.model, "
               "else lmql_nb's default model)", to_model=False, metavar="ID")
OUT = Option(("-o", "--out"), "out", "store the result in this variable",
             type=_identifier, to_model=False, metavar="VAR")
DECODER = Option(("--decoder",), "decoder", "decoding method", _checked("decoder"),
                 metavar="{" + ",".join(DECODERS) + "}")
QUERY_DECODER = Option(("--decoder",), "decoder", "decoding method (the program's decoder "
                       "clause takes the decoder's arguments: var(b=2), best_k(k=2))",
                       _checked("decoder", QUERY_RULES["decoder"]),
                       metavar="{" + ",".join(QUERY_DECODERS) + "}")
N = Option(("-n",), "n", "number of sequences (with --decoder sample, beam or beam_sample)",
           _checked("n"), metavar="N")
TEMPERATURE = Option(("--temperature",), "temperature", "sampling temperature",
                     _checked("temperature"), metavar="T")
SEED = Option(("--seed",), "seed", "random seed for sampling", _checked("seed"), metavar="S")
TOP_LOGPROBS = Option(("--top-logprobs",), "top_logprobs", "alternatives per token shown on "
                      "hover (default: %config LmqlMagics.top_logprobs)",
                      _checked("top_logprobs"), metavar="K")

SYSTEM = Option(("--system",), "system", "chat: the system message (the cell, or --user, "
                "is the user's message)", to_model=False, metavar="TEXT")
CHAT = Option(("--chat",), "chat", "chat: the cell is the user's message, answered in the "
              "assistant's turn through the model's chat template (implied by --system)",
              to_model=False, switch=True)

_GENERATE_OPTIONS: tuple[Option, ...] = (
    MODEL,
    SYSTEM,
    CHAT,
    Option(("--max-tokens",), "max_tokens", "tokens to generate at most "
           "(default: %config LmqlMagics.max_tokens)", _checked("max_tokens"), metavar="N"),
    DECODER,
    N,
    TEMPERATURE,
    Option(("--top-k",), "top_k", "sample from the K most likely tokens", _checked("top_k"),
           metavar="K"),
    Option(("--top-p",), "top_p", "sample from the smallest set with probability >= P",
           _checked("top_p"), metavar="P"),
    SEED,
    TOP_LOGPROBS,
    OUT,
    Option(("--format",), "format", "how to show the result (default: %config "
           "LmqlMagics.format)", choices=FORMATS, to_model=False),
)


def constraint_options() -> tuple[Option, ...]:
    """The flags of the registered constraint keywords, in registration order."""
    from ...constraints.keywords import keywords

    return tuple(Option((k.flag.flag,), k.name, k.flag.help, _flag_type(k.flag.parse),
                        metavar=k.flag.metavar, repeatable=k.flag.repeatable)
                 for k in keywords() if k.flag is not None)


def generate_options() -> tuple[Option, ...]:
    """`%%lmql_generate`'s options, with the constraint flags registered by now."""
    return _GENERATE_OPTIONS[:-2] + constraint_options() + _GENERATE_OPTIONS[-2:]


#: `%%lmql_generate`'s options with the built-in constraint flags
GENERATE_OPTIONS = generate_options()

QUERY_OPTIONS: tuple[Option, ...] = (
    MODEL,
    QUERY_DECODER,
    N,
    TEMPERATURE,
    Option(("--max-len",), "max_len", "the program's length in tokens at most (prompt and "
           "holes: LMQL's max_len)",
           _checked("max_len", QUERY_RULES["max_len"]), metavar="N"),
    SEED,
    TOP_LOGPROBS,
    Option(("--inputs",), "inputs", "the chat user's messages for `await input()`: a list "
           "variable (default: asked for in an input box inside the trace view, one per turn)",
           type=_identifier, to_model=False, metavar="VAR"),
    OUT,
)

SCORE_OPTIONS: tuple[Option, ...] = (
    dataclasses.replace(MODEL, repeatable=True, help="model id; repeat to compare models "
                        "in one heatmap (default: %config LmqlMagics.model, else lmql_nb's "
                        "default model)"),
    Option(("--agg",), "agg", "aggregation shown first (default: %config LmqlMagics.agg)",
           choices=AGGREGATIONS, to_model=False),
    SYSTEM,
    Option(("--user",), "user", "chat: the user's message; every argument is then a reply, "
           "scored as the assistant's turn", to_model=False, metavar="TEXT"),
    OUT,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would exit the kernel
        raise MagicUsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")


def build_parser(name: str, options: Sequence[Option],
                 positionals: Sequence[tuple[str, str, Any]] = ()) -> argparse.ArgumentParser:
    """An argparse parser for `options` and `positionals` ((name, help, nargs) triples)."""
    parser = _Parser(prog=name, add_help=False, allow_abbrev=False)
    for option in options:
        if option.switch:
            parser.add_argument(*option.flags, dest=option.dest, action="store_true",
                                default=None, help=option.help.replace("%", "%%"))
            continue
        parser.add_argument(*option.flags, dest=option.dest, type=option.type,
                            help=option.help.replace("%", "%%"),  # argparse %-formats help
                            choices=option.choices, metavar=option.metavar, default=None,
                            action="append" if option.repeatable else "store")
    for positional, help_text, nargs in positionals:
        parser.add_argument(positional, help=help_text.replace("%", "%%"), nargs=nargs)
    return parser


def model_kwargs(options: Sequence[Option], namespace: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line that go to `generate`/`score`."""
    return {o.dest: getattr(namespace, o.dest) for o in options
            if o.to_model and getattr(namespace, o.dest) is not None}
