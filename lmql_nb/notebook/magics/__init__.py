"""`%%lmql`, `%%lmql_generate` and `%lmql_score`, and their `%config` defaults.

    %load_ext lmql_nb
    %config LmqlMagics.max_tokens = 16

    %%lmql -o result
    "Q: What is the capital of {country}?\n"
    "A: [ANSWER]" where STOPS_AT(ANSWER, "\n")

    %%lmql_generate --max-tokens 8 -o answer
    The capital of {country} is

    %lmql_score "The capital of France is" " Paris" " Berlin"
"""

from __future__ import annotations

import inspect
import shlex
from typing import Any, Callable, Optional, Sequence

import traitlets
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from ...errors import InterpolationError, MagicUsageError
from ...core.options import MAX_TOP_LOGPROBS, check_values, parse_generate_options
from ...generations.result_cache import watch_hits
from ...core.results import Generation
from ...core.scoring import AGGREGATIONS
from .arguments import (FORMATS, GENERATE_OPTIONS, QUERY_OPTIONS, SCORE_OPTIONS,
                        build_parser, generate_options, model_kwargs)
from .interpolation import interpolate, interpolate_prompt, interpolate_values
from .running import CellSyntaxError, Interrupted, run_with_ticks
from .streaming import TokenCollector, make_output

GENERATE_PARSER = build_parser("%%lmql_generate", GENERATE_OPTIONS)
QUERY_PARSER = build_parser("%%lmql", QUERY_OPTIONS)
SCORE_PARSER = build_parser("%lmql_score", SCORE_OPTIONS, [
    ("prompt", "the prompt (quote it if it has spaces)", None),
    ("values", "the values to score; {name} of a list expands to several (with --user, "
               "the prompt argument is the first reply)", "*"),
])


def _with_usage(parser: Any) -> Callable:
    def decorate(function: Callable) -> Callable:
        function.__doc__ = f"{inspect.cleandoc(function.__doc__ or '')}\n\n{parser.format_help()}"
        return function
    return decorate


@magics_class
class LmqlMagics(Magics):
    """lmql_nb's magics. Their defaults are traitlets: `%config LmqlMagics.<name> = ...`,
    or `c.LmqlMagics.<name>` in an IPython config file."""

    model = traitlets.Unicode(
        "", help="Model id used when -m is not given ('': lmql_nb's default model)."
    ).tag(config=True)
    max_tokens = traitlets.Int(
        32, allow_none=True,
        help="Tokens %%lmql_generate generates at most when --max-tokens is not given "
             "(None: until end-of-sequence).",
    ).tag(config=True)
    top_logprobs = traitlets.Int(
        5, min=0, max=MAX_TOP_LOGPROBS,
        help="Alternatives recorded per token, shown when hovering a token.",
    ).tag(config=True)
    format = traitlets.Enum(FORMATS, default_value="widget",
                            help="How %%lmql_generate shows its result.").tag(config=True)
    agg = traitlets.Enum(AGGREGATIONS, default_value="sum",
                         help="Aggregation %lmql_score's heatmap shows first.").tag(config=True)
    update_interval = traitlets.Float(
        0.05, min=0.01, help="Seconds between two updates of a streaming view."
    ).tag(config=True)

    @property
    def _user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (magics are registered with a shell)."""
        assert self.shell is not None
        return self.shell.user_ns

    def _llm(self, model_id: Optional[str]) -> Any:
        from ... import api

        model_id = model_id or self.model
        return api.model(model_id) if model_id else api.get_default_model()

    @no_var_expand
    @cell_magic
    @_with_usage(QUERY_PARSER)
    def lmql(self, line: str, cell: str) -> None:
        """Run the cell as an LMQL query program and show its trace while it runs: the
        whole prompt as the program writes it, each hole labelled with its name and its
        tokens coloured by probability (alternatives on hover), each `distribution` as
        probability bars, one row per sample or beam.

        The program reads the notebook's variables (`{name}` and any name it uses);
        afterwards each hole (and `distribution` variable) is a notebook variable, from
        the first output when the decoder gives several. `-o VAR` stores what the program
        returns: its `return` value, else its `LMQLResult` (a list of them for n > 1).
        `-m`, `--decoder`, `-n`, ... override the program's `from` and decoder clauses;
        `%config LmqlMagics.model` is used when the program has no `from` clause.

        A chat program's `await input()` asks for the user's message in an input box
        inside the trace view, under the conversation so far (Enter sends it; "End chat"
        ends the chat; the interrupt button ends the cell, the trace so far kept);
        `--inputs VAR` gives the messages as a list instead (for unattended runs, where
        a notebook takes no input).
        """
        from .query_cell import compile_cell, run_cell

        args = _parse(QUERY_PARSER, line)
        options = model_kwargs(QUERY_OPTIONS, args)
        options.setdefault("top_logprobs", self.top_logprobs)
        try:
            function = compile_cell(line, cell, self._user_ns)
        except SyntaxError as error:  # the cell's line and a caret, as IPython shows its own
            raise CellSyntaxError(error) from None
        except (NameError, TypeError, ValueError) as error:
            raise error.with_traceback(None) from None  # about the cell, not lmql_nb's code
        model_id = args.model or ("" if function.program.model_source else self.model)
        if model_id:
            options["model"] = self._llm(model_id)
        requests = None
        if args.inputs is not None:  # the chat user's messages, given
            if args.inputs not in self._user_ns:
                raise UsageError(f"%%lmql: --inputs {args.inputs}: no such variable")
            options["inputs"] = self._user_ns[args.inputs]
        else:  # asked for in the notebook, under the trace
            from .chat_input import InputRequests

            requests = InputRequests()
            options["inputs"] = requests.ask
        try:  # the options against the program's own clauses, before anything runs
            settings = function._settings(options)
        except (TypeError, ValueError) as error:
            raise UsageError(f"%%lmql: {error}") from None
        run_cell(function, options, settings, self._user_ns, args.out,
                 self.update_interval, requests)

    @no_var_expand
    @cell_magic
    @_with_usage(GENERATE_PARSER)
    def lmql_generate(self, line: str, cell: str) -> None:
        """Generate a completion of the cell's text, shown as it arrives.

        With `--system TEXT` or `--chat`, the cell is the user's message of a chat (after
        the system message, if given) and the reply is the assistant's turn, through the
        model's chat template. `{name}` in the cell is filled from the notebook's
        variables ({{ and }} for literal braces); a cell that is just `{name}` of a
        conversation (a list of message dicts) continues that conversation. `-o VAR`
        stores what `generate` returns (a str, or a list of str for n > 1); on an
        interrupt it stores what was generated so far.
        """
        flags = generate_options()  # with constraint keywords registered since import
        args = _parse(build_parser("%%lmql_generate", flags), line)
        prompt: Any = _interpolate(interpolate_prompt, cell.removesuffix("\n"), self._user_ns)
        text = prompt if isinstance(prompt, str) else ""
        if not isinstance(prompt, str) and (args.system is not None or args.chat):
            raise UsageError("%%lmql_generate: the cell is a conversation already; --system "
                             "and --chat make the cell the user's message (put the system "
                             "message in the conversation instead)")
        if args.system is not None or args.chat:  # the cell is the user's turn
            system = ([] if args.system is None else [
                {"role": "system",
                 "content": _interpolate(interpolate, args.system, self._user_ns)}])
            prompt = [*system, {"role": "user", "content": text}]
        kwargs = model_kwargs(flags, args)
        kwargs.setdefault("max_tokens", self.max_tokens)
        kwargs.setdefault("top_logprobs", self.top_logprobs)
        kwargs["return_details"] = True
        try:
            options = parse_generate_options(**kwargs)
        except (TypeError, ValueError) as error:
            raise UsageError(f"%%lmql_generate: {error}") from None
        llm = self._llm(args.model)
        shown = text if isinstance(prompt, str) else ""  # a chat's rendering comes with it
        output = make_output(args.format or self.format, shown, llm.model_identifier,
                             options.n, options.decoder, lambda: getattr(llm, "loaded", True),
                             model=llm, branch_options=kwargs)
        collector = TokenCollector(options.constraint)
        remembered: list[float] = []  # when each cached result used was computed

        async def generating() -> Any:
            with watch_hits(remembered.append):
                return await llm.generate(prompt, on_token=collector, **kwargs)

        try:
            result = run_with_ticks(generating(), lambda: output.update(collector),
                                    self.update_interval)
        except KeyboardInterrupt:
            partial = collector.partial(shown, options.n)
            output.finish(partial, interrupted=True)
            self._store(args.out, partial, options.n)
            kept = sum(len(g.tokens) for g in partial)
            raise Interrupted(f"interrupted: kept {kept} token{'' if kept == 1 else 's'}") from None
        generations: list[Generation] = [result] if isinstance(result, Generation) else result
        output.finish(generations, cached_at=min(remembered) if remembered else None)
        self._store(args.out, generations, options.n)

    def _store(self, name: Optional[str], generations: Sequence[Generation], n: int) -> None:
        if name:
            texts = [g.text for g in generations]
            self._user_ns[name] = texts[0] if n == 1 else texts

    @no_var_expand
    @line_magic
    @_with_usage(SCORE_PARSER)
    def lmql_score(self, line: str) -> None:
        """Score values as continuations of a prompt and show the scoring heatmap.

        With `--user TEXT` (and `--system TEXT`), every argument is a reply to that chat,
        scored as the assistant's turn (its text and the end-of-turn token): `%lmql_score
        --user "Capital of France?" "Paris." "Berlin."` shows which the model prefers;
        a prompt that is just `{name}` of a conversation (a list of message dicts) scores
        the arguments as replies to it.

        Arguments are shell-quoted: `%lmql_score "The capital of France is" " Paris"
        " Berlin"`. `{name}` is filled from the notebook's variables; an argument that is
        just `{name}` of a list expands to its items. `-o VAR` stores the ScoringResult.
        Several `-m ID` score under each model: one heatmap with a group per model, each
        model's winner marked and disagreements highlighted (`-o` stores the
        ScoreComparison).
        """
        args = _parse(SCORE_PARSER, line)
        namespace = self._user_ns
        arguments = [args.prompt, *args.values] if args.user is not None else args.values
        prompt: Any
        if args.user is not None:  # a chat: the arguments are the assistant's replies
            system = ([] if args.system is None else [
                {"role": "system", "content": _interpolate(interpolate, args.system, namespace)}])
            prompt = [*system, {"role": "user",
                                "content": _interpolate(interpolate, args.user, namespace)}]
        elif args.system is not None:
            raise UsageError("%lmql_score: --system needs --user (the user's message the "
                             "values reply to)")
        else:
            prompt = _interpolate(interpolate_prompt, args.prompt, namespace)
            if isinstance(prompt, str):
                prompts = _interpolate(interpolate_values, args.prompt, namespace)
                if len(prompts) != 1:
                    raise UsageError(f"%lmql_score: the prompt {args.prompt} is a list; the "
                                     "prompt must be one string or a conversation (lists of "
                                     "strings expand only in the values)")
        values = [v for argument in arguments
                  for v in _interpolate(interpolate_values, argument, namespace)]
        try:
            check_values(values)
        except (TypeError, ValueError) as error:
            raise UsageError(f"%lmql_score: {error}") from None
        if args.model and len(args.model) > 1:
            from ...generations.comparison import compare_scores

            scoring = compare_scores(prompt, values, [self._llm(m) for m in args.model])
        else:
            scoring = self._llm(args.model[0] if args.model else None).score(prompt, values)
        result = run_with_ticks(scoring, lambda: None, self.update_interval)
        if args.out:
            namespace[args.out] = result
        _show_scores(result, args.agg or self.agg)


def _parse(parser: Any, line: str) -> Any:
    try:
        return parser.parse_args(shlex.split(line))
    except MagicUsageError as error:
        raise UsageError(str(error)) from None
    except ValueError as error:  # from shlex: an unclosed quote
        raise UsageError(f"{parser.prog}: cannot split the arguments ({error}); close the "
                         "quotes, or escape a literal quote with a backslash") from None


def _interpolate(function: Callable, text: str, namespace: Any) -> Any:
    try:
        return function(text, namespace)
    except InterpolationError as error:
        raise UsageError(str(error)) from None


def _show_scores(result: Any, agg: str) -> None:
    from IPython.display import display

    from ..kernel import in_kernel
    from ..views import ScoringHeatmap

    if not in_kernel():
        print(repr(result))
        return
    data, metadata = ScoringHeatmap(result, agg=agg).mimebundle()
    display(data, metadata=metadata, raw=True)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics, and their defaults with `%config`."""
    magics = LmqlMagics(shell=ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)
