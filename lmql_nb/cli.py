"""The command line: `python -m lmql_nb generate|score|serve|demo ...`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

from .backends.endpoints import API_KEY_ENV
from .core.options import DECODERS, GENERATE_RULES, GenerateOptions
from .core.validation import Rule

#: the in-process backends' `threads=` option (see `lmql_nb.backends.engine.in_process`)
THREADS = Rule("int", minimum=1, optional=True)


MODEL_HELP = "model id (default: $LMQL_NB_DEFAULT_MODEL, else local:gemma-3-270m)"


def _checked(name: str) -> Any:
    """argparse's `type=` for `generate`'s option `name`: its declared rule and words."""
    return GENERATE_RULES[name].argparse_type(name)


def _described(name: str, default: Any = None) -> str:
    """The help of `generate`'s option `name`, from its one declaration (`GenerateOptions`):
    what it means, what is accepted, and the default the command line uses."""
    [field] = [f for f in GenerateOptions.fields() if f.name == name]
    default = field.default if default is None else default
    return (f"{field.metadata['description']}; {GENERATE_RULES[name].accepted(False)} "
            f"(default {default})").replace("%", "%%")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lmql_nb",
                                     description="Generate and score text with a language model.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate", help="complete a prompt",
        description="Complete PROMPT and print it with its completion (one line per "
                    "sequence for -n > 1). The options are generate()'s, with its rules.")
    generate.add_argument("prompt", help="the text to complete (quote it if it has spaces)")
    generate.add_argument("--max-tokens", type=_checked("max_tokens"), default=32,
                          metavar="N", help=_described("max_tokens", 32))
    generate.add_argument("--model", default=None, metavar="ID", help=MODEL_HELP)
    generate.add_argument("--decoder", type=_checked("decoder"), default=None,
                          metavar="{" + ",".join(DECODERS) + "}",
                          help=_described("decoder", "argmax; sample with a --temperature"))
    generate.add_argument("-n", type=_checked("n"), default=1, metavar="N",
                          help=_described("n"))
    generate.add_argument("--temperature", type=_checked("temperature"), default=None,
                          metavar="T", help=_described("temperature", "1.0"))
    generate.add_argument("--seed", type=_checked("seed"), default=None, metavar="S",
                          help=_described("seed", "none: a new draw each run"))

    demo = commands.add_parser("demo", help="generate and score on the default model")
    demo.add_argument("--model", default=None, metavar="ID", help=MODEL_HELP)

    score = commands.add_parser(
        "score", help="score continuations of a prompt",
        description="Score each VALUE as a continuation of PROMPT and print a table: its "
                    "tokens, total and mean log-probability, and its probability among the "
                    "values (the best marked).")
    score.add_argument("prompt", help="the prompt the values continue (quote it if it has "
                                      "spaces)")
    score.add_argument("values", nargs="+", metavar="VALUE",
                       help="a continuation to score (one or more; mind a leading space)")
    score.add_argument("--model", default=None, metavar="ID", help=MODEL_HELP)

    serve = commands.add_parser(
        "serve", help="serve a model over an OpenAI-compatible HTTP API",
        description="Serve MODEL at http://HOST:PORT/v1 (/v1/completions, "
                    "/v1/chat/completions, /v1/models, /tokenize, /detokenize, /tokenizer_info, "
                    "/health).")
    serve.add_argument("model", metavar="MODEL", help="model id, e.g. local:gemma-3-270m")
    serve.add_argument("--name", default=None,
                       help="the model name clients ask for (default: the model's file or "
                            "folder name)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any other needs an API key)")
    serve.add_argument("--port", type=_port, default=8080,
                       help="port (default 8080; 0: a free one)")
    serve.add_argument("--api-key", default=None,
                       help=f"require this key (default: ${API_KEY_ENV}, which keeps it out "
                            "of the process list)")
    serve.add_argument("--dtype", default=None, help="model dtype: float32, bfloat16, ...")
    serve.add_argument("--threads", type=THREADS.argparse_type("threads"), default=None,
                       help="the model's threads (torch or llama.cpp)")
    serve.add_argument("--log-level", default="warning",
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--max-body-bytes", type=int, default=None,
                       help="refuse request bodies larger than this with a 413 (default "
                            "8 MiB)")
    serve.add_argument("--chat-template", default=None, metavar="TEMPLATE",
                       help="the chat template /v1/chat/completions renders with: a Jinja "
                            "template or a file holding one (default: the model's own)")
    serve.add_argument("--trust-request-chat-template", action="store_true",
                       help="run chat templates that requests bring (chat_template); they "
                            "run sandboxed with a time budget, but they are code from the "
                            "client: off by default, as in vLLM")
    return parser


def _run_generate(args: argparse.Namespace) -> None:
    from . import api

    options: dict[str, Any] = {"n": args.n}
    if args.decoder is not None:
        options["decoder"] = args.decoder
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.seed is not None:
        options["seed"] = args.seed
    result = api.generate_sync(args.prompt, args.max_tokens, model=args.model, **options)
    completions = result if isinstance(result, list) else [result]
    for i, text in enumerate(completions):
        label = f"[{i}] " if len(completions) > 1 else ""
        _print(f"{label}{args.prompt}\033[1m{text}\033[0m" if sys.stdout.isatty()
               else f"{label}{args.prompt}{text}")


def _run_score(args: argparse.Namespace) -> None:
    from . import api

    result = api.score_sync(args.prompt, args.values, model=args.model)
    best = result.argmax()
    width = max(len(repr(v)) for v in result.continuations)
    _print(f"{'value':<{width}}  {'tokens':>6}  {'logprob':>9}  {'mean':>8}  {'prob':>6}")
    for value, tokens, total, mean, prob in zip(result.continuations, result.tokens,
                                                result.scores("sum"), result.scores("mean"),
                                                result.probs("sum")):
        mark = "  <- best" if value == best else ""
        _print(f"{value!r:<{width}}  {len(tokens):>6}  {total:>9.4f}  {mean:>8.4f}  "
               f"{prob:>6.1%}{mark}")


def _run_serve(args: argparse.Namespace) -> None:
    from .server.run import serve

    options = {k: v for k, v in (("dtype", args.dtype), ("threads", args.threads),
                                 ("chat_template", args.chat_template)) if v is not None}
    serve(args.model, name=args.name, host=args.host, port=args.port,
          api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
          log_level=args.log_level, max_body_bytes=args.max_body_bytes,
          trust_request_chat_template=args.trust_request_chat_template, **options)


def _run_demo(args: argparse.Namespace) -> None:
    prompt = "The capital of France is"
    _print(f"$ python -m lmql_nb generate {prompt!r} --max-tokens 24")
    _run_generate(_parser().parse_args(["generate", prompt, "--max-tokens", "24"]
                                       + (["--model", args.model] if args.model else [])))
    values = [" Paris", " London", " Berlin", " Madrid"]
    _print(f"\n$ python -m lmql_nb score {prompt!r} " + " ".join(repr(v) for v in values))
    _run_score(_parser().parse_args(["score", prompt, *values]
                                    + (["--model", args.model] if args.model else [])))


def _print(line: str) -> None:
    """Print `line`; where stdout's encoding cannot write it (PYTHONIOENCODING=ascii, a
    legacy code page), its UTF-8 bytes, so the result is never lost."""
    try:
        print(line)
    except UnicodeEncodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write(line.encode("utf-8") + b"\n")
        sys.stdout.buffer.flush()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [0, 65535] (0: a free one), "
                                         f"got {text!r}")
    return port


#: the exit code of a command whose reader went away (128 + SIGPIPE, as the shell has it)
EXIT_BROKEN_PIPE = 141


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the process exit code."""
    if hasattr(sys.stderr, "reconfigure"):  # messages quote input: never fail to show one
        sys.stderr.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    try:
        {"generate": _run_generate, "score": _run_score, "serve": _run_serve,
         "demo": _run_demo}[args.command](args)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        # the interpreter flushes stdout again at exit; point it where that cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (TypeError, ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # the model or server failed (OpenAIBackendError, ...)
        if isinstance(error, (NotImplementedError, RecursionError)):
            raise  # a bug: keep the traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
