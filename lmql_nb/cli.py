"""The command line: `python -m lmql_nb generate|score ...`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .options import DECODERS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lmql_nb",
                                     description="Generate and score text with a language model.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="complete a prompt")
    generate.add_argument("prompt")
    generate.add_argument("--max-tokens", type=int, default=32,
                          help="tokens to generate at most (default 32; 0 or more)")
    generate.add_argument("--model", default=None,
                          help="model id (default: $LMQL_NB_DEFAULT_MODEL or local:gemma-3-270m)")
    generate.add_argument("--decoder", choices=DECODERS, default="argmax")
    generate.add_argument("-n", type=int, default=1, help="sequences (sample or beam)")
    generate.add_argument("--temperature", type=float, default=None)
    generate.add_argument("--seed", type=int, default=None)

    score = commands.add_parser("score", help="score continuations of a prompt")
    score.add_argument("prompt")
    score.add_argument("values", nargs="+", metavar="VALUE")
    score.add_argument("--model", default=None)
    return parser


def _run_generate(args: argparse.Namespace) -> None:
    from . import api

    options = {"decoder": args.decoder, "n": args.n}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    result = api.generate_sync(args.prompt, args.max_tokens, model=args.model, **options)
    completions = result if isinstance(result, list) else [result]
    for i, text in enumerate(completions):
        label = f"[{i}] " if len(completions) > 1 else ""
        print(f"{label}{args.prompt}\033[1m{text}\033[0m" if sys.stdout.isatty()
              else f"{label}{args.prompt}{text}")


def _run_score(args: argparse.Namespace) -> None:
    from . import api

    result = api.score_sync(args.prompt, args.values, model=args.model)
    best = result.argmax()
    width = max(len(repr(v)) for v in result.continuations)
    print(f"{'value':<{width}}  {'tokens':>6}  {'logprob':>9}  {'mean':>8}  {'prob':>6}")
    for value, tokens, total, mean, prob in zip(result.continuations, result.tokens,
                                                result.scores("sum"), result.scores("mean"),
                                                result.probs("sum")):
        mark = "  <- best" if value == best else ""
        print(f"{value!r:<{width}}  {len(tokens):>6}  {total:>9.4f}  {mean:>8.4f}  {prob:>6.1%}{mark}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        {"generate": _run_generate, "score": _run_score}[args.command](args)
    except (TypeError, ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
