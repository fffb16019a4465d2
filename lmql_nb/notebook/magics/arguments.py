"""The options of the magics, declared once.

Each option is one `Option` line in `GENERATE_OPTIONS` or `SCORE_OPTIONS` (options
several magics share are named once); an option with `to_model=True` is passed to
`generate`/`score`/the query program under its `dest` name when given. Two kinds of
flag are declared elsewhere and read from there: `%%lmql`'s are the query options that
declare a flag (`lmql_nb.query.options`; `query_options()` turns them into `Option`s,
`-o` after them), and the constraint flags (`--stops-at`, `--regex`, `--where`...) are
each constraint keyword's own (`lmql_nb.constraints.keywords`), which
`generate_options()` reads when a magic parses its line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, NoReturn, Optional, Sequence

from ...errors import MagicUsageError
from ...core.options import DECODERS, GENERATE_RULES, PENALTY_OPTIONS
from ...core.scoring import AGGREGATIONS
from ...core.validation import Rule
from ...query.options import QueryOption, Settings, declared

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


def _braced(choices: Sequence[str]) -> str:
    return "{" + ",".join(choices) + "}"


def query_flag(option: QueryOption) -> Option:
    """The `Option` of a query option that declares a flag: its spellings, help and
    metavar; its text parsed by the option's rule, or (a model id, a variable's name)
    left for the magic to resolve."""
    flag = option.flag
    assert flag is not None, f"the query option {option.name} declares no flag"
    if flag.gives != "value":
        return Option(option.flags, option.name, option.help,
                      _identifier if flag.gives == "variable" else str, to_model=False,
                      metavar=flag.metavar)
    assert option.rule is not None
    braced = _braced(option.rule.choices) if option.rule.choices else None
    return Option(option.flags, option.name, option.help, _checked(option.name, option.rule),
                  metavar=flag.metavar or braced)


OUT = Option(("-o", "--out"), "out", "store the result in this variable",
             type=_identifier, to_model=False, metavar="VAR")


def query_options(declaration: type = Settings) -> tuple[Option, ...]:
    """`%%lmql`'s options: each query option of `declaration` that declares a flag, in
    declaration order, then `-o`."""
    return tuple(query_flag(o) for o in declared(declaration) if o.flag is not None) + (OUT,)


#: `%%lmql`'s options
QUERY_OPTIONS = query_options()


def _shared(name: str) -> Option:
    """`%%lmql`'s flag of query option `name`, which other magics take too."""
    return next(o for o in QUERY_OPTIONS if o.dest == name)


MODEL = _shared("model")
TEMPERATURE = _shared("temperature")
SEED = _shared("seed")
TOP_LOGPROBS = _shared("top_logprobs")
PENALTIES = tuple(_shared(name) for name in PENALTY_OPTIONS)
DECODER = Option(("--decoder",), "decoder", "decoding method", _checked("decoder"),
                 metavar=_braced(DECODERS))
N = Option(("-n",), "n", "number of sequences (with --decoder sample, beam or beam_sample)",
           _checked("n"), metavar="N")

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
    *PENALTIES,
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
