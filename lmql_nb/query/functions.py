"""The Python entry points: `@query`, `query(source)`, `run`, `run_sync`, `F`.

    @lmql_nb.query
    def chain_of_thought(question):
        '''lmql
        "Q: {question}\\n"
        "A: Let's think step by step.\\n[REASONING]"
        return REASONING
        '''

A `def` query is called synchronously, an `async def` one returns a coroutine. Keyword
options (`model=`, `decoder=`, `n=`, `temperature=`, `max_len=`, ...) go on the decorator
or on the call (the call wins), and override the program's own decoder and `from`
clauses. A non-zero `temperature` without a decoder means `sample`, as in LMQL.

Variables: a program reads the names it does not bind where it was written, when it
runs, as Python code in the same place would: `run(source)` / `run_sync(source)` read
the calling function's locals and module globals at the call; a query defined inside a
function reads that function's locals when it is called (as a closure does). Compiled
programs are cached by source text, never with values.

A keyword argument that names a variable the program reads (or a parameter of a
`def` query) is that variable, even where it is also an option's name (`n`, `seed`,
`model`, ...): LMQL's rule. Where such a name could be either, a `QueryArgumentWarning`
says it was taken as the variable.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import inspect
import linecache
import sys
import textwrap
import tokenize
import warnings
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Mapping, Optional, Union

from ..core import aio
from ..core.options import (DECODER_ARGUMENTS, DECODER_OPTIONS, GENERATE_RULES, HOLE_DECODERS,
                            PENALTY_OPTIONS, QUERY_DECODERS, QUERY_RULES, SAMPLING_DECODERS,
                            SAMPLING_OPTIONS, applies, check_decoder, default_decoder)
from ..generations.llm import LLM
from .options import DEFAULTS, OPTIONS, TRANSPORT_OPTIONS, Settings
from .program_cache import ProgramCache
from .result import LMQLResult

if TYPE_CHECKING:  # the compiler and runtime load with the first query
    from .compiler import Origin, Program
    from .runtime import Outcome

_REFUSED: dict[str, str] = {}

#: where a query reads its caller's or definer's local variables, when it runs
LocalsReader = Callable[[], Mapping[str, Any]]


class BeamWidthWarning(UserWarning):
    """A beam search returned fewer results than its `n` asked for."""


class QueryArgumentWarning(UserWarning):
    """A keyword argument named both like a query option and like a variable the program
    reads was taken as the variable (LMQL's rule)."""


def _config(options: dict[str, Any], where: str) -> dict[str, Any]:
    for key in options:
        if key in _REFUSED:
            raise ValueError(f"{_REFUSED[key]} ({key}=) are not supported by lmql_nb")
        if key not in OPTIONS:
            raise TypeError(f"{where} got an unknown keyword {key!r}; query options are: "
                            f"{', '.join(OPTIONS)}")
    return _with_writer(dict(options))


class QueryFunction:
    """A compiled query program, callable like the function it came from.

    `await f.run(*args, **kwargs)` runs it from async code whatever `is_async` is;
    `f.outcomes(...)` gives each execution's return value and `LMQLResult` (with its
    trace) together, for tools such as the notebook's `%%lmql`.
    """

    __lmql_query__ = True

    def __init__(self, program: Program, scope: dict[str, Any],
                 captured: Union[Mapping[str, Any], LocalsReader],
                 signature: Optional[inspect.Signature], is_async: bool,
                 config: dict[str, Any], name: str = "query", returns: str = "program",
                 keywords_are_options: bool = False):
        self.program = program
        self.scope = scope  # the defining module's globals (read live)
        # the defining function's locals, read when the program runs
        self._locals: LocalsReader = (captured if callable(captured)
                                      else functools.partial(_fixed, captured))
        self.signature = signature
        self.is_async = is_async
        self.config = config
        self.returns = returns
        self.keywords_are_options = keywords_are_options  # %%lmql: no keyword is a variable
        self.__name__ = name
        self.__qualname__ = name
        self._outer = _function(program.outer,
                                _QueryGlobals(scope) if program.has_prologue else scope)
        if not program.checked:
            _check_constraints(program)
            program.checked = True

    @property
    def captured(self) -> Mapping[str, Any]:
        """The defining function's local variables, as they are now."""
        return self._locals()

    @property
    def _function(self) -> Callable:
        """The program's function, bound to the variables it captures as they are now."""
        return self._bind(self._locals())

    def __repr__(self) -> str:
        return f"<lmql_nb query {self.__name__}({', '.join(self.program.parameters)})>"

    @property
    def output_variables(self) -> list[str]:
        """The program's holes (and distribution variables), in order of appearance."""
        return self.program.hole_names

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """A query defined in a class is a method: `obj.q(...)` passes `obj` first (and
        `[X: self.q]` runs it nested, bound to `self`)."""
        return self if instance is None else BoundQuery(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return self.run(*args, **kwargs)
        return _run_sync(self.run, *args, **kwargs)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the program; its return value(s) or `LMQLResult`(s)."""
        from ..generations import tracing

        certificate = kwargs.pop("certificate", self.config.get("certificate", False))
        tracing.check_option(certificate)
        if certificate is False and tracing.active_tracer() is None:
            return (await self._run(args, kwargs))[0]
        # an inference certificate: this run's model calls and results (a child of the
        # enclosing `traced` context, if any)
        with tracing.traced(self.__name__) as tracer:
            value, outcomes = await self._run(args, kwargs)
            tracer.event("lmql.LMQLResult", [
                {"prompt": o.result.prompt, "variables": o.result.variables,
                 "distribution_variable": o.result.distribution_variable,
                 "distribution_values": o.result.distribution_values} for o in outcomes])
        if certificate is not False:
            tracing.deliver(certificate, tracer)
        return value

    async def _run(self, args: tuple, kwargs: dict) -> tuple[Any, list[Outcome]]:
        outcomes, settings = await self._execute(args, kwargs)
        values = [self._shape(o) for o in outcomes]
        # as in LMQL: one output when n is 1, or when the program finished without a
        # model call (nothing for the decoder to branch on)
        single = settings.results == 1 or not any(o.called_model for o in outcomes)
        return (values[0] if single else values), outcomes

    def _shape(self, outcome: Outcome) -> Any:
        if self.returns == "F":
            holes = {n: outcome.result.variables[n] for n in self.program.hole_names
                     if n in outcome.result.variables}
            return next(iter(holes.values())) if len(holes) == 1 else holes
        return outcome.output

    async def outcomes(self, *args: Any, **kwargs: Any) -> list[Outcome]:
        """Run the program; one `Outcome` per output (best first for beams)."""
        return (await self._execute(args, kwargs))[0]

    async def _execute(self, args: tuple, kwargs: dict) -> tuple[list[Outcome], Settings]:
        local_values = self._locals()
        options = _config(self._options(kwargs), f"{self.__name__}()")
        arguments = self._arguments(args, kwargs, local_values)
        self._check_where_names(arguments, local_values)
        settings = self._settings(options, arguments, local_values)
        function = self._bind(local_values)
        from .runtime import Runner

        outcomes = await Runner(self.program, function, arguments, settings).run()
        if settings.decoder == "beam" and len(outcomes) < settings.n \
                and any(o.called_model for o in outcomes):
            warnings.warn(f"beam(n={settings.n}) gave {len(outcomes)} result"
                          f"{'' if len(outcomes) == 1 else 's'}: the search found no more "
                          "distinct ways through the program (a hole has at most as many "
                          "continuations as the vocabulary and its constraints allow; nested "
                          "queries do not branch)", BeamWidthWarning, stacklevel=3)
        return outcomes, settings

    def _options(self, kwargs: dict) -> dict[str, Any]:
        """Take the query options out of `kwargs` (LMQL's rule: a keyword naming a variable
        the program reads, or a parameter of a `def` query, is that variable)."""
        if self.keywords_are_options:
            variables: set[str] = set()
        elif self.signature is not None:
            variables = set(self.signature.parameters)
        else:
            variables = set(self.program.parameters)
        options = {}
        # a decoder's own argument (var's b, best_k's k) could be meant as the option only
        # where that decoder may run: elsewhere a variable of that name warns of nothing
        decoder = kwargs.get("decoder") or self.config.get("decoder") or self.program.decoder
        for key in list(kwargs):
            if key in variables:
                if key in OPTIONS and self.signature is None and (
                        key not in ("b", "k") or applies(key, decoder)):
                    warnings.warn(f"{self.__name__}(): {key}= was taken as the program's "
                                  f"variable {key} (the program reads it), not as the query "
                                  f"option {key}; rename the variable to pass the option",
                                  QueryArgumentWarning, stacklevel=4)
                continue
            if key in OPTIONS or key in _REFUSED:
                options[key] = kwargs.pop(key)
        return options

    def _bind(self, local_values: Mapping[str, Any]) -> Callable:
        """The program's function, its captured names bound to their values now."""
        values = []
        for name in self.program.captures:
            if name in local_values:
                values.append(local_values[name])
            elif name in self.scope:
                values.append(self.scope[name])
            elif hasattr(builtins, name):
                values.append(getattr(builtins, name))
            else:
                raise NameError(f"name {name!r} is not defined: the query {self.__name__} "
                                "reads it")
        return self._outer(*values)

    def _arguments(self, args: tuple, kwargs: dict,
                   local_values: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        if local_values is None:
            local_values = self._locals()
        if self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{self.__name__}(): {error}") from None
            bound.apply_defaults()
            return dict(bound.arguments)
        parameters = self.program.parameters
        if len(args) > len(parameters):
            raise TypeError(f"{self.__name__}() takes {len(parameters)} positional argument(s) "
                            f"({', '.join(parameters) or 'none'}) but {len(args)} were given")
        values = dict(zip(parameters, args))
        for key, value in kwargs.items():
            if key in values:
                raise TypeError(f"{self.__name__}() got multiple values for {key!r}")
            if key not in parameters:
                raise TypeError(f"{self.__name__}() got an unexpected argument {key!r}; the "
                                f"program reads: {', '.join(parameters) or 'no arguments'}")
            values[key] = value
        for name in parameters:
            if name not in values:
                if name in local_values:
                    values[name] = local_values[name]
                elif name in self.scope:
                    values[name] = self.scope[name]
                else:
                    raise TypeError(f"Failed to resolve variable {name!r} in LMQL query "
                                    f"{self.__name__}(): the program reads it and it is "
                                    f"defined nowhere (pass it: {self.__name__}({name}=...))")
        return values

    def _check_where_names(self, arguments: dict[str, Any],
                           local_values: Mapping[str, Any]) -> None:
        """A `where` may name a variable that is no hole (LMQL reads it as the query's
        variable, and it constrains no generation); it must be defined somewhere."""
        missing = [n for n in self.program.where_names if n not in arguments
                   and n not in local_values and n not in self.scope]
        if missing:
            listed = ", ".join(f"'{n}'" for n in sorted(missing))
            raise TypeError(f"Failed to resolve variable{'s' if len(missing) > 1 else ''} in "
                            f"LMQL query: {listed} (named in {self.__name__}'s where clause, "
                            f"but no hole of the program, no argument and defined nowhere; "
                            f"its holes: {', '.join(self.program.hole_names) or 'none'})")

    def _settings(self, call: dict[str, Any], arguments: Optional[dict[str, Any]] = None,
                  local_values: Optional[Mapping[str, Any]] = None) -> Settings:
        """The run's settings from the program's clauses, the decorator and the call (each
        overriding the one before). Decoder options given below the layer that chose the
        decoder are dropped where they do not apply to it (`@query(temperature=...)`
        called with `decoder="beam"`); given with it or above, they must apply.
        `arguments` are the program's arguments (a decoder clause may read them)."""
        program = self.program
        if local_values is None:
            local_values = self._locals()
        clause = self._decoder_arguments(arguments or {}, local_values)
        _check_clause(program.decoder, clause)
        layers = [dict(clause, **({"decoder": program.decoder} if program.decoder else {})),
                  self.config, call]
        deciding = max((i for i, layer in enumerate(layers) if layer.get("decoder")),
                       default=None)
        decoder = layers[deciding]["decoder"] if deciding is not None else None
        merged: dict[str, Any] = {}
        for i, layer in enumerate(layers):
            for key, value in layer.items():
                if key == "decoder" or (deciding is not None and i < deciding
                                        and not applies(key, decoder)):
                    continue
                merged[key] = value
        options = merged
        if decoder is None:
            decoder = default_decoder(merged.get("temperature"))
        check_decoder(decoder, 1, (), QUERY_DECODERS)  # a known decoder, before its defaults
        # LMQL's defaults: var(b=2, n=b), best_k(k=4); best_k draws n = 2k samples
        b = QUERY_RULES["b"].check("b", merged.get("b", DEFAULTS["b"]))
        k = QUERY_RULES["k"].check("k", merged.get("k", 4 if decoder == "best_k"
                                                   else DEFAULTS["k"]))
        n = GENERATE_RULES["n"].check("n", merged.get("n", {"var": b, "best_k": 2 * k}.get(
            decoder, 1)))
        if decoder == "best_k":
            if k > n:
                raise ValueError(f"best_k(k={k}, n={n}): k, the results kept, must be at "
                                 f"most n, the samples drawn")
        # a temperature of 0 asks for no sampling: allowed with any decoder, as in LMQL
        # and a seed under a deterministic decoder changes nothing: accepted, as in LMQL
        if decoder not in SAMPLING_DECODERS:
            merged.pop("seed", None)
        given = [key for key in DECODER_OPTIONS if merged.get(key) is not None
                 and (key != "temperature" or merged[key])]
        check_decoder(decoder, n, given, QUERY_DECODERS)
        max_len = QUERY_RULES["max_len"].check("max_len", merged.get("max_len",
                                                                     DEFAULTS["max_len"]))
        from ..core.options import parse_generate_options

        check = {key: merged[key] for key in (*SAMPLING_OPTIONS, "top_logprobs", "cache")
                 if merged.get(key) is not None}
        check.update({key: merged[key] for key in PENALTY_OPTIONS if key in merged})
        hole = HOLE_DECODERS.get(decoder, decoder)  # what each hole runs: generate's checks
        parse_generate_options(None, decoder=hole, n=b if decoder == "var" else
                               (n if applies("n", hole) else 1), **check)
        _check_chunksize(merged.get("chunksize"))
        _warn_transport(merged)
        model = self._model(options, arguments or {}, local_values)
        on_event = merged.get("on_event")
        verbose = merged.get("verbose", DEFAULTS["verbose"])
        if not isinstance(verbose, bool):
            raise TypeError(f"verbose must be True or False, got {verbose!r}")
        if verbose:
            on_event = _chain(on_event, _verbose_log(model.model_identifier))
        # each option as given (the declaration's default where none was), and those
        # resolved here
        return Settings(**dict(merged, model=model, decoder=decoder, n=n, b=b, k=k,
                               max_len=max_len, on_event=on_event,
                               inputs=_inputs(merged.get("inputs"))))

    def _decoder_arguments(self, arguments: dict[str, Any],
                           local_values: Mapping[str, Any]) -> dict[str, Any]:
        """The decoder clause's arguments, its expressions evaluated as the user's code
        (`argmax(n=n)` reads the query's argument `n`)."""
        from .compiler import DecoderExpression

        values = dict(self.program.decoder_arguments)
        for key, value in values.items():
            if isinstance(value, DecoderExpression):
                values[key] = eval(compile(value.source, self.program.origin.filename, "eval"),
                                   self._namespace(arguments, local_values))
        return values

    def _namespace(self, arguments: dict[str, Any],
                   local_values: Mapping[str, Any]) -> dict[str, Any]:
        """What the program's clauses see: lmql, the defining scope, the arguments."""
        # up a layer: a program's clauses (from, decoder arguments) are the user's code,
        # which reads the package as `lmql` the way LMQL programs do
        import lmql_nb

        return {"lmql": lmql_nb, "lmql_nb": lmql_nb, **self.scope, **local_values,
                **arguments}

    def _model(self, options: dict[str, Any], arguments: dict[str, Any],
               local_values: Mapping[str, Any]) -> LLM:
        from ..api import _as_llm, get_default_model

        if options.get("model") is not None:
            return _as_llm(options["model"])
        source = self.program.model_source
        if source is None:
            return get_default_model()
        namespace = self._namespace(arguments, local_values)
        # in brackets: the clause may span lines and hold comments
        value = eval(compile(f"(\n{source}\n)", self.program.origin.filename, "eval"),
                     namespace)
        return _as_llm(value, "the from clause")


def _with_writer(options: dict[str, Any]) -> dict[str, Any]:
    """`output_writer=` (LMQL's; see `lmql_nb.query.output`) follows the run's events,
    beside an `on_event` callback if there is one."""
    writer = options.pop("output_writer", None)
    if writer is None:
        return options
    if not callable(writer):
        raise TypeError("output_writer must be lmql_nb.stream(...), lmql_nb.printing, "
                        "lmql_nb.silent or a callable(sequence_index, event), got "
                        f"{type(writer).__name__}")
    options["on_event"] = _chain(options.get("on_event"), writer)
    return options


def _chain(first: Optional[Callable[[int, Any], None]],
           then: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
    """An event callback that calls `then`, and `first` (if any) after it."""
    if first is None:
        return then

    def both(index: int, event: Any) -> None:
        then(index, event)
        first(index, event)

    return both


def _check_clause(decoder: Optional[str], arguments: dict[str, Any]) -> None:
    """The decoder clause's arguments (`beam(n=2)`) are options a query call takes."""
    unknown = [key for key in arguments if key not in OPTIONS]
    if unknown:
        name = decoder or "the decoder"
        takes = ", ".join(DECODER_ARGUMENTS.get(decoder or "", ())) or "no arguments of its own"
        raise TypeError(f"{name}(...) got an unknown argument {unknown[0]!r}; {name} takes "
                        f"{takes}, and any query option: "
                        f"{', '.join(o for o in OPTIONS if o not in DECODER_OPTIONS)}")


def _check_chunksize(chunksize: Any) -> None:
    """LMQL's `chunksize=`: how many tokens its decoders generate between constraint
    checks. lmql_nb checks constraints at every token (so no chunk size changes a
    result): a valid value is accepted for LMQL programs, with a warning that says so."""
    if chunksize is None:
        return
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive int, got {chunksize!r}")
    import warnings

    warnings.warn(f"chunksize={chunksize} has no effect in lmql_nb: LMQL generates that many "
                  "tokens between constraint checks, lmql_nb checks its constraints at every "
                  "token, so there are no chunks and every chunksize gives the same result",
                  UserWarning, stacklevel=5)


def _warn_transport(options: Mapping[str, Any]) -> None:
    """LMQL's `chunk_timeout=` and `openai_nonstop=` tune how LMQL streams chunks from
    OpenAI's API; lmql_nb makes one request per hole, so they are accepted (LMQL's
    programs pass them) with a warning that they change nothing."""
    import warnings

    for key in TRANSPORT_OPTIONS:
        if options.get(key) is not None:
            warnings.warn(f"{key}={options[key]!r} has no effect in lmql_nb: it tunes how "
                          "LMQL streams chunks from OpenAI's API, and lmql_nb makes one "
                          "request per hole", UserWarning, stacklevel=5)


def _verbose_log(model_id: str) -> Callable[[int, Any], None]:
    """`verbose=True` (LMQL's): one line on stdout per model call of the run, as it
    finishes: the hole it filled or the distribution it scored, and what came back."""
    from .trace import DistributionScored, HoleFinished

    def log(index: int, event: Any) -> None:
        if isinstance(event, HoleFinished):
            hole = event.segment
            print(f"lmql_nb [{index}] generate {hole.name} on {model_id}: {hole.text!r} "
                  f"({len(hole.tokens)} tokens, {hole.finish_reason})", flush=True)
        elif isinstance(event, DistributionScored):
            scored = event.segment
            scores = ", ".join(f"{v!r}: {p:.3f}" for v, p in zip(scored.values, scored.probs))
            print(f"lmql_nb [{index}] score {scored.name} on {model_id}: {scores} -> "
                  f"{scored.chosen!r}", flush=True)

    return log
def _inputs(inputs: Any) -> Any:
    """`inputs=`: the chat user's messages (a list of str, in order) or an async
    `ask(prompt)` that returns the next one (None ends the chat)."""
    if inputs is None or callable(inputs):
        return inputs
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)) or not all(
            isinstance(item, str) for item in inputs):
        raise TypeError(f"inputs must be a list of str (the user's messages for await "
                        f"input(), in order) or an async function, got {inputs!r:.60}")
    return tuple(inputs)

class BoundQuery:
    """A query method bound to an object: calls pass the object as the first argument."""

    __lmql_query__ = True

    def __init__(self, function: QueryFunction, instance: Any):
        self.function = function
        self.bound_to = (instance,)
        self.__name__ = function.__name__

    @property
    def program(self) -> Program:
        return self.function.program

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(self.bound_to[0], *args, **kwargs)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        """`QueryFunction.run` with the object first."""
        return await self.function.run(self.bound_to[0], *args, **kwargs)

    async def outcomes(self, *args: Any, **kwargs: Any) -> list[Outcome]:
        """`QueryFunction.outcomes` with the object first."""
        return await self.function.outcomes(self.bound_to[0], *args, **kwargs)

    def __repr__(self) -> str:
        return f"<bound lmql_nb query {self.__name__} of {self.bound_to[0]!r}>"


def _run_sync(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a query synchronously. As in LMQL, not from inside a coroutine (it would block
    that event loop until the query ends): there, await it. A notebook cell is the
    exception: its sync calls run on lmql_nb's own event loop (see `aio.run_sync`)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return aio.run_sync(function, *args, **kwargs)
    if not _in_ipython():
        raise RuntimeError("LMQL queries cannot be called synchronously from within an async "
                           "context: await them instead (`await f(...)` for an async query, "
                           "`await f.run(...)` for any query, `await lmql_nb.run(...)`)")
    return aio.run_sync(function, *args, **kwargs)


def _in_ipython() -> bool:
    """Whether this runs in an IPython shell or Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


def _check_constraints(program: Program) -> None:
    """Check each hole's constraints that are written as literals now, before any
    generation (an invalid regex, empty choices, a stop kept and dropped at once)."""
    from ..constraints import parse_constraints
    from .runtime import hole_options

    for site in program.sites:
        if site.others or any(c.has_operands for c in site.clauses):
            continue
        try:
            parse_constraints(hole_options(site, None, ()))
        except (TypeError, ValueError) as error:
            line = program.origin.position(site.line, 0)[0]
            raise type(error)(f"the constraints of [{site.name}] ({program.origin.filename}, "
                              f"line {line}): {error}") from None


class _QueryGlobals(dict):
    """The globals of a program with a prologue: what the prologue defines lives here
    (the query's own module, as in LMQL), everything else is read from the defining
    module's globals, live."""

    def __init__(self, module: dict[str, Any]):
        super().__init__(__builtins__=module.get("__builtins__", __builtins__),
                         __name__=module.get("__name__", "__lmql__"))
        self.module = module

    def __missing__(self, name: str) -> Any:
        return self.module[name]


def _function(code: Any, scope: dict[str, Any]) -> Callable:
    import types

    return types.FunctionType(code, scope)


def _caller(depth: int, live: bool) -> tuple[dict[str, Any], LocalsReader]:
    """The globals of the frame `depth` levels up, and where its locals are read: live
    from the frame (`live`: a query defined there reads them when it runs, as a closure
    would), or as they are now (a program run there now); nothing at module level."""
    frame = sys._getframe(depth + 1)
    scope = frame.f_globals
    if frame.f_locals is scope:
        return scope, _no_locals
    if live:
        return scope, lambda: frame.f_locals
    snapshot = dict(frame.f_locals)
    return scope, functools.partial(_fixed, snapshot)


def _no_locals() -> Mapping[str, Any]:
    return {}


def _fixed(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return values


def _docstring_program(function: Callable) -> tuple[str, Origin]:
    """The raw docstring of `function` (escapes unprocessed, as written) and where it is."""
    from .compiler import Origin

    try:
        lines, first = inspect.getsourcelines(function)
        filename = inspect.getsourcefile(function) or "<lmql>"
        ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        # no Python source to read (exec'd code, a file that is not its source)
        doc = function.__doc__
        if doc is None:
            raise ValueError(f"{function.__name__} has no docstring: a query function's "
                             "docstring is its LMQL program") from None
        return textwrap.dedent(_strip_marker(doc)), Origin(f"<{function.__name__}>")
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    shift = len(source.split("\n")[0]) - len(dedented.split("\n")[0])
    tree = ast.parse(dedented)
    definition = next(n for n in tree.body
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    node = definition.body[0] if definition.body else None
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)):
        raise ValueError(f"{function.__name__} has no docstring: a query function's "
                         "docstring is its LMQL program")
    segment = ast.get_source_segment(dedented, node.value) or ""
    quote_at = next(i for i, c in enumerate(segment) if c in "\"'")
    quote = 3 if segment[quote_at:quote_at + 3] in ('"""', "'''") else 1
    raw = segment[quote_at + quote:len(segment) - quote]
    start_line = first + node.value.lineno - 1
    start_col = node.value.col_offset + shift + quote_at + quote
    body_lines = raw.split("\n")
    indent = min((len(line) - len(line.lstrip()) for line in body_lines[1:] if line.strip()),
                 default=0)
    program = "\n".join([body_lines[0]] + [line[indent:] for line in body_lines[1:]])
    file_lines = tuple(line.rstrip("\n") for line in linecache.getlines(filename))
    return _strip_marker(program), Origin(filename, start_line, start_col, indent + shift,
                                          file_lines)


def _strip_marker(program: str) -> str:
    """Drop a leading `lmql` marker line (as in `'''lmql`), keeping line numbers: it
    becomes an empty line, which does not count for the program's indentation."""
    first, newline, rest = program.partition("\n")
    if first.strip() == "lmql":
        return newline + rest
    return program


def _from_function(function: Callable, config: dict[str, Any], depth: int) -> QueryFunction:
    from .compiler import compile_program

    _, local_values = _caller(depth + 1, live=True)  # the function's own globals: scope
    source, origin = _docstring_program(function)
    signature: Optional[inspect.Signature] = inspect.signature(function)
    assert signature is not None
    parameters: Optional[list[str]] = list(signature.parameters)
    if not parameters:  # as in LMQL: the program's free variables may be given by keyword
        parameters = signature = None
    program = compile_program(source, origin, parameters, tuple(local_values()))
    if signature is None:
        _order_parameters(program, set(local_values()) | set(function.__globals__))
    query_function = QueryFunction(program, function.__globals__, local_values, signature,
                                   inspect.iscoroutinefunction(function), config,
                                   function.__name__)
    functools.update_wrapper(query_function, function)
    return query_function


def _order_parameters(program: Program, defined: set[str],
                      first: Optional[list[str]] = None) -> None:
    """A program's free variables as its parameters: `first` (in that order), then those
    defined nowhere (in order of first use), then those the scope defines (read from it
    unless given)."""
    first = list(first or [])
    rest = [n for n in program.parameters if n not in first]
    program.parameters = first + [n for n in rest if n not in defined] + \
        [n for n in rest if n in defined]


def _from_source(source: str, config: dict[str, Any], is_async: bool, depth: int,
                 returns: str = "program", name: str = "query",
                 input_variables: Optional[list[str]] = None,
                 live: bool = True) -> QueryFunction:
    """A query function for `source` in the scope `depth` frames up (`live`: it reads that
    scope's locals when it runs; else as they are now, for a program run at once)."""
    if not isinstance(source, str):
        raise TypeError(f"a query program must be a str, got {type(source).__name__}")
    scope, local_values = _caller(depth + 1, live)
    program = _source_program(source) if live else _programs.get(source, _source_program)
    if input_variables is not None:
        if not isinstance(input_variables, (list, tuple)) or not all(
                isinstance(v, str) and v.isidentifier() for v in input_variables):
            raise TypeError(f"input_variables must be a list of names, got {input_variables!r}")
        unread = [v for v in input_variables if v not in program.parameters]
        if unread:
            raise ValueError(f"input_variables names {', '.join(unread)}, which the program "
                             f"does not read (it reads: {', '.join(program.parameters) or 'none'})")
    program = dataclasses.replace(program, parameters=list(program.parameters))  # its own order
    _order_parameters(program, set(local_values()) | set(scope), input_variables)
    return QueryFunction(program, scope, local_values, None, is_async, config, name, returns)


def _source_program(source: str) -> Program:
    """`source` compiled (dedented; errors point at the lines as written)."""
    from .compiler import Origin, compile_program

    stripped = _strip_marker(source)
    dedented = textwrap.dedent(stripped)
    removed = next((len(a) - len(b) for a, b in zip(stripped.split("\n"),
                                                    dedented.split("\n")) if a.strip()), 0)
    origin = Origin(line=1, first_col=removed, indent=removed, lines=tuple(source.split("\n")))
    program = compile_program(dedented, origin, None, ())
    _check_constraints(program)
    program.checked = True
    return program


def query_in_namespace(source: str, namespace: dict[str, Any], *, filename: str = "<cell>",
                       first_line: int = 1, **options: Any) -> QueryFunction:
    """A query function for `source` that reads its names from `namespace` (e.g. a
    notebook's user namespace) when called, with no arguments. Its syntax errors point at
    `filename`, counting lines from `first_line` (a cell's magic line). For tools such as
    the `%%lmql` magic: `await f.outcomes()` gives each execution's value and result."""
    from .compiler import Origin, compile_program

    if not isinstance(source, str):
        raise TypeError(f"a query program must be a str, got {type(source).__name__}")
    origin = Origin(filename, first_line, 0, 0, tuple(source.split("\n")))
    program = compile_program(source, origin, None, ())
    return QueryFunction(program, namespace, {}, None, True, _config(options, "%%lmql"),
                         "cell", keywords_are_options=True)


def query(function: Union[Callable, str, None] = None, *, is_async: Optional[bool] = None,
          input_variables: Optional[list[str]] = None, **options: Any) -> Any:
    """Make a query function: `@query` / `@query(model=..., decoder=...)` on a `def` or
    `async def` whose docstring is the LMQL program, or `query(source_string)` (async
    unless `is_async=False`; `input_variables=[names]` orders its positional
    arguments)."""
    config = _config(options, "query()")
    if isinstance(function, str):
        return _from_source(function, config, True if is_async is None else is_async, 1,
                            input_variables=input_variables)
    if input_variables is not None:
        raise TypeError("input_variables= is for a query made of a program string; a "
                        "function's parameters are its arguments")
    if function is None:
        def decorate(f: Callable) -> QueryFunction:
            return _from_function(f, config, 1)

        return decorate
    if not callable(function):
        raise TypeError(f"query() takes a function or a program string, got "
                        f"{type(function).__name__}")
    return _from_function(function, config, 1)


#: compiled programs of `run` / `run_sync` by source text (code only, never values)
_programs: ProgramCache[Program] = ProgramCache()


def run(source: str, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
    """Run the LMQL program `source`; keyword arguments are its variables (and query
    options such as `model=`, `decoder=`). The program reads other variables where
    `run` is called, as they are at the call. Returns a coroutine to await."""
    return _from_source(source, {}, True, 1, live=False).run(*args, **kwargs)


def run_sync(source: str, *args: Any, **kwargs: Any) -> Any:
    """Synchronous `run`."""
    return _run_sync(_from_source(source, {}, True, 1, live=False).run, *args, **kwargs)


def main(query_function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `query_function` (a query function, sync or async, or any async function) to
    completion and return its result, blocking (LMQL's `lmql.main`)."""
    if isinstance(query_function, QueryFunction):
        return _run_sync(query_function.run, *args, **kwargs)
    if inspect.iscoroutinefunction(query_function):
        return _run_sync(query_function, *args, **kwargs)
    if not callable(query_function):
        raise TypeError(f"main() takes a query function, got {type(query_function).__name__}")
    result = query_function(*args, **kwargs)
    if inspect.isawaitable(result):
        async def wait() -> Any:
            return await result

        return _run_sync(wait)
    return result


def F(template: str, constraints: Optional[str] = None, is_async: bool = False,
      **options: Any) -> QueryFunction:
    """A one-prompt query as a callable: `{names}` are its arguments (positional in order
    of appearance, or by keyword); it returns the single hole's value, or a dict of the
    holes' values when there are several. `constraints` is a where expression."""
    if not isinstance(template, str):
        raise TypeError(f"F() takes the prompt template as a str, got {type(template).__name__}")
    source = repr(template)
    if constraints is not None:
        source += " where " + _where_expression(constraints)
    config = _config(options, "F()")
    return _from_source(source, config, is_async, 1, returns="F", name="F")


def _where_expression(constraints: Any) -> str:
    """`F`'s constraints as one where expression on one line: parsed alone, so that no
    text of it can become a statement or another clause of the program."""
    if not isinstance(constraints, str):
        raise TypeError(f"constraints must be a where expression str, got "
                        f"{type(constraints).__name__}")
    if not constraints.strip():
        raise ValueError("constraints is empty: pass a where expression such as "
                         "'len(TOKENS(X)) < 10', or leave it out")
    try:
        tree = ast.parse(constraints.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"constraints must be one where expression, e.g. 'len(TOKENS(X)) < "
                         f"10 and STOPS_AT(X, \".\")'; {constraints!r} is not ({error.msg}, "
                         f"column {error.offset})") from None
    except (ValueError, RecursionError) as error:  # a null byte; absurd nesting
        raise ValueError(f"constraints must be one where expression: {error}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("where", "distribution"):
            raise ValueError(f"constraints: {node.id!r} is an LMQL keyword, not a name a "
                             "where expression can use")
    return ast.unparse(tree.body)


__all__ = ["query", "run", "run_sync", "F", "main", "QueryFunction", "LMQLResult",
           "query_in_namespace", "QueryArgumentWarning", "BeamWidthWarning"]
