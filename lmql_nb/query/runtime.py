"""Running a compiled program: executions, holes, distributions, decoders.

An `Execution` is one run of the program's Python. Its prompt grows with each prompt
statement; a hole is `generate` on the prompt built so far (so the engine's prefix cache
serves what earlier holes already computed), a `distribution` is `score`.

Decoders act on whole programs, as in LMQL:
- `argmax`: one execution, each hole greedy;
- `sample(n=k)`: k independent executions, run concurrently (their model calls batch);
- `best_k(k, n)`: n executions sampled as `sample(n)` does; the k with the highest total
  log-probability are the result, best first;
- `beam(n=k)`: program states advance hole by hole; each state's hole gets its k best
  completions (the engine's beam search), and the k states with the highest total
  log-probability across holes live on. A state forked at a hole runs the program's
  Python again from the start, replaying the values its ancestors chose (no model calls,
  `print` quiet), so control flow that depends on a hole branches as it should. Python
  side effects other than `print` (appending to an outside list) happen again on replay.
- `beam_sample(n=k, temperature)`: the same, each hole's k completions from the engine's
  sampling beam search (each beam's expansions drawn from the model's distribution);
- `var(b, n)`: LMQL's variable-level beam search, the same with each state's hole
  sampled b times (distinct token sequences once), the n best states living on;
- `beam_var(n=k)`: `beam` with states ranked by log-probability over the number of
  tokens generated to the power 0.7 (LMQL's length normalisation, alpha = 0.7).

Cancellation: every hole and distribution gives control back to the event loop (even
when the result cache answers it at once), and so do prompt statements and each loop
iteration of the program (`tick`, at most every `TICK_SECONDS`), so `wait_for`, a task's
`cancel()` and the notebook's interrupt stop any program. A program that stops making
progress ends with an error instead of spinning: its prompt may not outgrow `max_len`
(checked as text is added, not only at holes), and a hole reached `STALL_LIMIT` times in
a row on an unchanged prompt ends the run.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import inspect
import json
import threading
import time
from typing import Any, AsyncIterator, Callable, Optional

import anyio
import anyio.lowlevel

from ..core import aio
from ..core.continuation import continuing
from ..core.options import HOLE_DECODERS, NEUTRAL_PENALTIES
from ..constraints.folding import UNKNOWN, fold
from ..constraints.where import Clause, Where, join_where
from .compiler import HoleSite, Program
from .decorators import DecoratorList
from .nested import DeferredCall, describe_call, nested_target, stable_prefix
from .options import OPTIONS, Settings
from .context import ProgramContext
from .result import LMQLResult
from .trace import (DistributionScored, DistributionSegment, Event, HoleFinished,
                    HoleSegment, HoleStarted, NestedFinished, NestedSegment, NestedStarted,
                    RoleSegment, RoleStarted, model_calls,
                    SequenceDropped, SequenceFinished, SequenceStarted, StepRecorded, StepSegment,
                    TextAppended, TextSegment, TokenAppended, Trace)

#: the decoders that search over program states hole by hole (`_Beam`)
SEARCHES = ("beam", "beam_sample", "var", "beam_var")
#: LMQL's length normalisation under beam_var: log-probability / tokens ** alpha
BEAM_VAR_ALPHA = 0.7
#: how often (seconds) a running program gives control back to the event loop at least
TICK_SECONDS = 0.02
#: how many times in a row a hole may be asked on an unchanged prompt
STALL_LIMIT = 100
#: an INT hole without a length bound writes at most this many characters (any 64-bit
#: integer fits); LMQL itself bounds it only by max_len
INT_MAX_CHARS = 20


#: what a program "returns" when it returns no value (see compiler._mark_no_value)
NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "<no value>"})()


@dataclasses.dataclass
class Outcome:
    """One finished execution: the program's return value (None when it returned none),
    whether it returned one, and its `LMQLResult` (prompt, variables, trace)."""

    value: Any
    result: LMQLResult
    logprob: float
    returned: bool = True

    @property
    def output(self) -> Any:
        """What the query gives for this execution, by LMQL's rule: the returned value,
        else (no `return`, a bare `return`) the `LMQLResult`."""
        return self.value if self.returned else self.result

    @property
    def called_model(self) -> bool:
        """Whether the execution reached a hole or distribution (made a model call)."""
        return _called_model(self.result.trace)


def _called_model(trace: Trace) -> bool:
    return model_calls(trace) > 0


@contextlib.asynccontextmanager
async def _task_group() -> AsyncIterator[Any]:
    """An anyio task group whose failure is the first error of the program, not an
    exception group (k executions of one program fail alike)."""
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseException as error:
        first = error
        while getattr(first, "exceptions", None):
            first = first.exceptions[0]  # type: ignore[attr-defined]
        if first is error:
            raise
        raise first from None


class ChatEnded(Exception):
    """`await input()` found no further message: the chat, and the execution, end."""


class BeamDropped(Exception):
    """Raised inside an execution whose state fell out of the beam."""


class _Replay:
    """Values an execution takes instead of asking the model (a forked beam state)."""

    def __init__(self, segments: list):
        self.segments = list(segments)
        self.position = 0

    @property
    def active(self) -> bool:
        return self.position < len(self.segments)

    def next(self, name: str) -> Any:
        segment = self.segments[self.position]
        if segment.name != name:
            raise RuntimeError(f"beam search re-ran the program to fork a state, and it reached "
                               f"{name} where it had reached {segment.name}: under beam(), a "
                               "program's Python must take the same path given the same hole "
                               "values (no randomness or outside state in its control flow)")
        self.position += 1
        return segment


class Execution:
    """One run of the program: the runtime object the compiled code calls (`__lmql__`)."""

    NO_VALUE = NO_VALUE

    def __init__(self, runner: "Runner", slot: int, replay: Optional[list] = None):
        self.runner = runner
        self.slot = slot
        self.trace = Trace()
        self.prompt = ""
        self.variables: dict[str, Any] = {}
        self.scored: Optional[DistributionSegment] = None
        self.replay = _Replay(replay or [])
        self.choices: list = []  # hole and distribution segments, in order (for forks)
        self.hole_count = 0
        self.prompt_bytes = 0  # len(self.prompt.encode()), kept as the prompt grows
        self.measured = (0, 0)  # (prompt_bytes, tokens) when the prompt was last counted
        self.last_hole: Optional[tuple[int, str]] = None  # (site, prompt) of the last hole
        self.stalled = 0  # holes asked in a row on an unchanged prompt
        self.depth = 0  # 1 inside a nested query, 2 inside one nested in that, ...
        self.outer: list = []  # in a nested query: the segments of the prompt it continues
        self.inputs_read = 0

    @property
    def logprob(self) -> float:
        return self.trace.logprob

    @property
    def context(self) -> ProgramContext:
        """What the program's name `context` reads (see `lmql_nb.query.context`)."""
        return ProgramContext(self)

    def emit(self, event: Event) -> None:
        if not self.replay.active:
            self.runner.emit(self.slot, event)

    # -- what compiled programs call ------------------------------------------------------

    async def tick(self) -> None:
        """Give control back to the event loop if the program has not for a while (each
        loop iteration of the program calls this: a loop stays cancellable)."""
        await self.runner.tick()

    async def text(self, text: Any) -> None:
        text = str(text)
        await self.runner.tick()
        if not text:
            return
        self._grow(text)
        segments = self.trace.segments
        if segments and isinstance(segments[-1], TextSegment):
            segments[-1] = TextSegment(segments[-1].text + text)
        else:
            segments.append(TextSegment(text))
        self.emit(TextAppended(text))
        if not self.replay.active:
            await self.runner.check_length(self)

    def _grow(self, text: str) -> None:
        """Append `text` to the prompt (and count its bytes for `check_length`)."""
        self.prompt += text
        self.prompt_bytes += len(text.encode("utf-8", "surrogatepass"))

    async def role(self, role: str) -> None:
        """A chat tag: the text that follows is `role`'s turn."""
        if self.conversation() is None and self.prompt.strip():
            raise ValueError(f"the program writes text before its first chat tag "
                             f"({{:{role}}}): {self.prompt.strip()[:40]!r}; in a chat "
                             "program every prompt belongs to a turn ({:system}, {:user} "
                             "or {:assistant})")
        self.trace.segments.append(RoleSegment(role))
        self.emit(RoleStarted(role))

    async def input(self, *prompt: Any) -> str:
        """`await input()`: the chat's user's next message (ChatEnded when there is none:
        the execution ends there)."""
        inputs = self.runner.settings.inputs
        decoder = self.runner.settings.decoder
        if decoder in SEARCHES:
            raise ValueError(f"await input() runs under argmax, sample or best_k, not "
                             f"{decoder} (a search over program states re-runs a program to "
                             "fork it, which would ask again)")
        if inputs is None:
            raise ValueError("await input(): the program asks its user for a message, and "
                             "none can be given here: pass inputs=[...] (the user's "
                             "messages, in order), or run it in %%lmql")
        if callable(inputs):
            text = await inputs(" ".join(str(p) for p in prompt))
        else:
            text = inputs[self.inputs_read] if self.inputs_read < len(inputs) else None
        if text is None:
            raise ChatEnded()
        if not isinstance(text, str):
            raise TypeError(f"inputs must be strings; message {self.inputs_read} is a "
                            f"{type(text).__name__}")
        self.inputs_read += 1
        return text

    def conversation(self) -> Optional[list[dict[str, str]]]:
        """The chat so far (None without chat tags), a nested query's inside the chat of
        the program it runs in (`outer`: that program's segments before the hole)."""
        return Trace(self.outer + self.trace.segments).conversation()

    def model_prompt(self, name: str) -> Any:
        """What the model continues at hole (or distribution) `name`: the prompt text, or
        for a chat program the conversation, its last turn the assistant's."""
        messages = self.conversation()
        if messages is None:
            return self.prompt
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"[{name}] is in a {{:{messages[-1]['role']}}} turn: the model "
                             "writes the assistant's turn; put the hole after {:assistant}")
        return messages

    async def hole(self, site_index: int, tactic: Any, operands: tuple,
                   decorators: tuple = ()) -> Any:
        site = self.runner.program.sites[site_index]
        await anyio.lowlevel.checkpoint()  # a cached answer must not starve the loop
        if self.replay.active:
            segment = self.replay.next(site.name)
            self._add(segment)
            for step in self.runner.decorator_steps.get(id(segment), ()):
                self._step(step)
            return self.variables[site.name]
        if site.others:  # conditions on other variables: folded now
            site, operands = await self.runner.fold_conditions(site, operands)
        decorated = DecoratorList.of(decorators, site.decorators) if decorators else None
        fixed = decorated.pre(site.name, self.context) if decorated is not None else None
        steps: list[StepSegment] = []
        if fixed is not None:  # a pre decorator chose the value: no model call
            value, text, source = fixed
            segment = HoleSegment(site.name, text, (), value)
            steps.append(StepSegment("decorator", site.name, f"@{source}",
                                     f"pre: fixed {site.name} = {_short(value)}"))
        elif nested_target(tactic) is not None:  # the outer hole's where goes inside
            segment = await run_nested(self, site, tactic,
                                       hole_options(site, None, operands).get("where"))
        else:
            options = self.runner.hole_options(site, tactic, operands)
            if self.runner.outer_where:
                if "json_schema" in options:
                    raise ValueError(f"[{site.name}: {getattr(tactic, '__name__', tactic)}] "
                                     "is typed by a JSON schema and takes no where constraints "
                                     "(the nested query's hole has them from the outer hole)")
                options["where"] = join_where(options.get("where"), self.runner.outer_where)
            on_text = None
            if decorated is not None and decorated.has_stage("stream"):
                decorated.stream("", self.context)
                on_text = _streamer(decorated, self.context)
            self._check_progress(site_index, site)
            self.emit(HoleStarted(site.name))
            segment = await self.runner.fill(self, site, options, tactic, on_text)
            if on_text is not None:
                steps.append(StepSegment("decorator", site.name,
                                         " ".join(f"@{s}" for s in site.decorators),
                                         f"streaming: called with {site.name}'s text per token"))
        if decorated is not None and fixed is None and decorated.has_stage("post"):
            value, text = segment.value, segment.text
            for source, value, text in decorated.post(segment.value, segment.text,
                                                      self.context):
                steps.append(StepSegment("decorator", site.name, f"@{source}",
                                         f"post: {site.name} = {_short(value)}"
                                         + ("" if text == str(value) else f", text {text!r}")))
            segment = dataclasses.replace(segment, text=text, value=value)
        self._add(segment)
        if isinstance(segment, HoleSegment):
            self.emit(HoleFinished(segment))
        if steps:
            self.runner.decorator_steps[id(segment)] = steps
        for step in steps:
            self._step(step)
            self.emit(StepRecorded(step))
        return segment.value

    def defer(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """A hole's type written as a call, `[X: f(args)]`: a nested query is handed on
        uncalled; any other function is called now and its result is the type."""
        return DeferredCall(function, args, kwargs).resolve()

    async def call(self, source: Optional[str], function: Any, /, *args: Any,
                   **kwargs: Any) -> Any:
        """`f(args)` in the program (see compiler._Calls): as in LMQL, an async function
        is awaited and a query is run, each recorded as a step (unless `source` is None);
        any other function is called as Python calls it."""
        if _is_query(function):
            value = await function.run(*args, **kwargs)
        elif inspect.iscoroutinefunction(function):
            value = await function(*args, **kwargs)
        else:
            return function(*args, **kwargs)
        if source is not None:
            self._record_tool(StepSegment("tool", "", source, f"→ {_short(value)}"))
        return value

    async def tool(self, source: str, function: Any, /, *args: Any, **kwargs: Any) -> Any:
        """`await f(args)` in the program: the call's result (awaited if it is awaitable;
        a plain value as it is, LMQL dropping `await`), recorded as a step."""
        if _is_query(function):
            value = await function.run(*args, **kwargs)
        else:
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        self._record_tool(StepSegment("tool", "", source, f"→ {_short(value)}"))
        return value

    async def tool_text(self, source: str, text: str) -> None:
        """`{calc(EXPR)}` in a prompt: the call's text joins the prompt as a tool step."""
        step = StepSegment("tool", "", source, f"→ {_short(text)}", text)
        self._grow(text)
        self._record_tool(step)

    def _record_tool(self, step: StepSegment) -> None:
        self._step(step)
        self.emit(StepRecorded(step))

    def _step(self, step: StepSegment) -> None:
        self.trace.segments.append(step)

    def _check_progress(self, site_index: int, site: HoleSite) -> None:
        """End a program that asks the same hole on the same prompt again and again."""
        current = (site_index, self.prompt)
        self.stalled = self.stalled + 1 if current == self.last_hole else 0
        self.last_hole = current
        if self.stalled >= STALL_LIMIT:
            raise RuntimeError(
                f"the program makes no progress: [{site.name}] "
                f"({self.runner.program_line(site)}) was asked {STALL_LIMIT + 1} times in a "
                "row on the same prompt (its text added nothing, and nothing else changed "
                "the prompt), so the model was asked the same question each time. End the "
                f"loop when a hole adds nothing (if not {site.name}: break), or constrain "
                "the hole so that it writes something")

    async def distribution(self, site_index: int, values: Any) -> str:
        site = self.runner.program.sites[site_index]
        await anyio.lowlevel.checkpoint()
        try:
            values = _distribution_values(site.name, values)
        except TypeError as error:
            raise TypeError(f"{error} ({self.runner.program_line(site)})") from None
        if self.replay.active:
            self._add(self.replay.next(site.name))
            return self.variables[site.name]
        scored = await self.runner.settings.model.score(self.model_prompt(site.name), values,
                                                        cache=self.runner.settings.cache)
        probs = tuple(float(p) for p in scored.probs())
        best = max(range(len(values)), key=lambda i: probs[i])
        segment = DistributionSegment(site.name, tuple(values), probs, values[best])
        self._add(segment)
        self.emit(DistributionScored(segment))
        return segment.chosen

    def print(self, *args: Any, **kwargs: Any) -> None:
        if not self.replay.active:
            builtins.print(*args, **kwargs)

    def _add(self, segment: Any) -> None:
        """Append a hole's or distribution's segment: prompt, trace and variables."""
        self.trace.segments.append(segment)
        self._grow(segment.text)
        self.choices.append(segment)
        if isinstance(segment, (HoleSegment, NestedSegment)):
            self.variables[segment.name] = segment.value
        else:
            self.variables[segment.name] = segment.chosen
            self.variables[f"P({segment.name})"] = list(zip(segment.values, segment.probs))
            self.scored = segment

    def result(self) -> LMQLResult:
        distribution = self.scored
        limits = {s.name: s.limit for s in self.trace.segments
                  if isinstance(s, HoleSegment) and s.limit}
        return LMQLResult(self.prompt, dict(self.variables),
                          distribution.name if distribution else None,
                          list(distribution.values) if distribution else None, self.trace,
                          getattr(self.runner.settings.model, "model_identifier", ""),
                          limits=limits)


def _counts_tokens(clauses: tuple[Clause, ...]) -> bool:
    """Whether a clause (or a branch of one) is a length in tokens."""
    return any(_counts_tokens(branch) for c in clauses for branch in c.parts) or any(
        c.kind == "length" and c.arguments[0][1] == "tokens" for c in clauses)


def hole_options(site: HoleSite, tactic: Any, operands: tuple) -> dict[str, Any]:
    """`generate`'s constraint keywords for a hole: its where clauses and its type."""
    options: dict[str, Any] = {}
    if site.clauses:  # the parsed clauses themselves, with the operands' values
        options["where"] = Where(tuple(site.clauses), tuple(operands))
    if tactic is None or tactic is str:
        pass
    elif tactic is int:
        options["type"] = int
    elif isinstance(tactic, str):
        options["regex"] = tactic
    elif getattr(tactic, "__lmql_query__", False):
        raise ValueError(f"[{site.name}: ...]: a nested query fills the hole itself; it "
                         "cannot be combined with a hole's other type")
    elif isinstance(tactic, type):
        options["json_schema"] = json_schema_of(tactic, site.name)
        if site.clauses:
            raise ValueError(f"[{site.name}: {tactic.__name__}] is typed by a JSON schema, which "
                             "alone decides its text: it takes no where constraints")
    elif callable(tactic):
        raise TypeError(f"[{site.name}: {getattr(tactic, '__name__', tactic)}]: a function as "
                        "a hole's type must be a query function (@lmql.query) or return a "
                        "type; for a tool, call it in the program and interpolate its result "
                        "({f(...)})")
    else:
        raise TypeError(f"[{site.name}: {tactic!r}]: a hole's type must be int, str, a regex "
                        "string, a dataclass or a pydantic model class")
    if int_capped(site, tactic is int):
        cap = Clause(site.name, "length", (("literal", "chars"), ("literal", "<="),
                                           ("literal", INT_MAX_CHARS)),
                     source=f"len({site.name}) <= {INT_MAX_CHARS} (INT_MAX_CHARS)")
        options["where"] = join_where(options.get("where"), Where((cap,), ()))
    return options


def int_capped(site: HoleSite, typed_int: bool) -> bool:
    """Whether the hole is an integer (`typed_int`: `[N: int]`, or `INT(N)`) with no
    length bound of its own, which `INT_MAX_CHARS` then bounds (a small model can write
    digits until max_len)."""
    is_int = typed_int or any(c.kind == "type" for c in site.clauses)
    bounded = any(c.kind in ("length", "in", "equals", "regex") for c in site.clauses)
    return is_int and not bounded


def json_schema_of(cls: type, name: str) -> dict:
    """The JSON schema of a dataclass or pydantic model class, its objects closed (no
    properties but the declared ones, as the class accepts)."""
    if callable(getattr(cls, "model_json_schema", None)):
        return _closed(cls.model_json_schema())  # type: ignore[attr-defined]
    if dataclasses.is_dataclass(cls):
        try:
            from pydantic import TypeAdapter
        except ImportError:
            raise TypeError(f"[{name}: {cls.__name__}]: typing a hole with a dataclass needs "
                            "pydantic (pip install pydantic)") from None
        return _closed(TypeAdapter(cls).json_schema())
    raise TypeError(f"[{name}: {cls.__name__}]: a hole's type must be int, str, a regex "
                    "string, a dataclass or a pydantic model class")


def _closed(schema: dict) -> dict:
    for node in [schema, *schema.get("$defs", {}).values()]:
        if node.get("type") == "object":
            node.setdefault("additionalProperties", False)
    return schema


def hole_value(text: str, tactic: Any) -> Any:
    """The Python value of a hole's text under its type."""
    if tactic is int:
        return int(text)
    if isinstance(tactic, type) and tactic is not str:
        data = json.loads(text)
        if callable(getattr(tactic, "model_validate", None)):
            return tactic.model_validate(data)  # type: ignore[attr-defined]
        from pydantic import TypeAdapter

        return TypeAdapter(tactic).validate_python(data)
    return text


def _distribution_values(name: str, values: Any) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"distribution {name} in ...: the values must be a list of str, got "
                        "one str")
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"distribution {name} in ...: the values must be a list of str, got "
                        f"{type(values).__name__} {values!r}") from None
    if not values or not all(isinstance(v, str) and v for v in values):
        raise TypeError(f"distribution {name} in ...: the values must be a non-empty list of "
                        f"non-empty str, got {values!r}")
    return values


class Runner:
    """Runs one program call under one decoder."""

    def __init__(self, program: Program, function: Callable, arguments: dict[str, Any],
                 settings: Settings):
        self.program = program
        self.function = function
        self.arguments = arguments
        self.settings = settings
        self._tokenizer: Any = None
        self.beam: Optional[_Beam] = None
        self._last_tick = time.monotonic()
        self.outer_where: Optional[Where] = None  # a nested query's: the outer hole's where
        self.decorator_steps: dict[int, list[StepSegment]] = {}  # by id of a hole's segment

    def emit(self, slot: int, event: Event) -> None:
        if self.settings.on_event is not None:
            self.settings.on_event(slot, event)

    async def run(self) -> list[Outcome]:
        if self.settings.decoder in SEARCHES:
            self.beam = _Beam(self)
            return await self.beam.run()
        if self.settings.decoder == "best_k":
            sampled = await self._executions()
            ranked = sorted(sampled, key=lambda o: -o.logprob)
            return ranked[:self.settings.k]
        return await self._executions()

    async def _executions(self) -> list[Outcome]:
        """n independent executions (argmax, sample, best_k), run concurrently."""
        outcomes: list[Optional[Outcome]] = [None] * self.settings.n

        async def one(slot: int) -> None:
            outcomes[slot] = await self.execute(Execution(self, slot))

        if self.settings.n == 1:
            await one(0)
        else:
            async with _task_group() as group:
                for slot in range(self.settings.n):
                    group.start_soon(one, slot)
        return [o for o in outcomes if o is not None]

    async def execute(self, execution: Execution, announce: bool = True) -> Outcome:
        """Run the program once in `execution` (`announce`: emit its SequenceStarted)."""
        if announce:
            self.emit(execution.slot, SequenceStarted(execution.trace.copy()))
        try:
            with continuing():  # its holes continue one prompt (llama.cpp: one KV state)
                value = await self.function(execution, **self.arguments)
        except ChatEnded:  # the user ended the chat: the program ends where it asked
            value = NO_VALUE
        self.emit(execution.slot, SequenceFinished(execution.trace))
        returned = value is not NO_VALUE
        return Outcome(value if returned else None, execution.result(), execution.logprob,
                       returned)

    async def tick(self) -> None:
        """A checkpoint (cancellation reaches the program here) at most every
        `TICK_SECONDS`."""
        now = time.monotonic()
        if now - self._last_tick >= TICK_SECONDS:
            self._last_tick = now
            await anyio.lowlevel.checkpoint()

    def program_line(self, site: HoleSite) -> str:
        """Where `site` is in the user's file, as "file, line N"."""
        origin = self.program.origin
        return f"{origin.filename}, line {origin.position(site.line, 0)[0]}"

    def hole_options(self, site: HoleSite, tactic: Any, operands: tuple) -> dict[str, Any]:
        """`hole_options`, its errors naming the hole and its line."""
        try:
            return hole_options(site, tactic, operands)
        except (TypeError, ValueError) as error:
            raise type(error)(f"the constraints of [{site.name}] "
                              f"({self.program_line(site)}): {error}") from None

    async def count_tokens(self, prompt: str) -> int:
        """`prompt`'s length in the model's tokens."""
        return len((await self.tokenizer()).encode_prompt(prompt))

    async def tokenizer(self) -> Any:
        """The model's tokenizer (loaded once, off the event loop)."""
        if self._tokenizer is None:
            self._tokenizer = await aio.wait(aio.run_in_thread(self.settings.model.get_tokenizer))
        return self._tokenizer

    async def fold_conditions(self, site: HoleSite, operands: tuple) -> tuple[HoleSite, tuple]:
        """`site` with its clauses' conditions on other variables folded to their truth
        (`constraints/folding.py`), and its operands without those variables' values."""
        count = len(site.others)
        holes = {s.name for s in self.program.sites}
        values: dict[str, Any] = {}
        for name, read in zip(site.others, operands[-count:]):
            try:
                values[name] = UNKNOWN if name in site.pending else read()
            except NameError:
                if name not in holes:
                    raise NameError(f"the where clause of [{site.name}] "
                                    f"({self.program_line(site)}) names {name}, which is "
                                    "neither a hole of the query nor defined") from None
                values[name] = UNKNOWN  # a later hole
        operands = operands[:-count]
        tokenizer: Any = await self.tokenizer() if _counts_tokens(site.clauses) else None
        try:
            clauses = fold(site.clauses, site.name, values, operands,
                           lambda text: len(tokenizer.encode(text)))
        except (TypeError, ValueError) as error:
            raise type(error)(f"the constraints of [{site.name}] "
                              f"({self.program_line(site)}): {error}") from None
        return dataclasses.replace(site, clauses=tuple(clauses), others=(),
                                   pending=frozenset()), operands

    async def check_length(self, execution: Execution) -> None:
        """Refuse a prompt longer than `max_len` tokens. A token covers at least one byte,
        so the prompt is only tokenized when its bytes could exceed the bound."""
        measured_bytes, measured_tokens = execution.measured
        limit = self.settings.max_len
        if measured_tokens + (execution.prompt_bytes - measured_bytes) + 4 <= limit:
            return
        used = await self.count_tokens(execution.prompt)
        execution.measured = (execution.prompt_bytes, used)
        if used > limit:
            raise ValueError(f"the prompt is {used} tokens long, beyond max_len={limit} (a "
                             "program's whole text, holes included, must fit in max_len; a "
                             "loop that adds text forever ends here); pass a larger max_len")

    async def max_tokens(self, prompt: str) -> int:
        """What is left of `max_len` after `prompt` (in the model's tokens)."""
        used = await self.count_tokens(prompt)
        left = self.settings.max_len - used
        if left <= 0:
            raise ValueError(f"the prompt is {used} tokens long, which leaves nothing of "
                             f"max_len={self.settings.max_len} for the next hole; pass a "
                             "larger max_len")
        return left

    def generate_options(self, execution: Execution, site: HoleSite,
                         options: dict[str, Any]) -> dict[str, Any]:
        settings = self.settings
        kwargs: dict[str, Any] = dict(options, return_details=True,
                                      top_logprobs=settings.top_logprobs, cache=settings.cache)
        decoder = HOLE_DECODERS.get(settings.decoder, settings.decoder)
        for key, neutral in NEUTRAL_PENALTIES.items():  # only those that change something
            if getattr(settings, key) != neutral:
                kwargs[key] = getattr(settings, key)
        if decoder in ("sample", "beam_sample"):
            kwargs["decoder"] = decoder
            for key in ("temperature", "top_k", "top_p"):
                if getattr(settings, key) is not None:
                    kwargs[key] = getattr(settings, key)
            if settings.seed is not None:  # one stream per execution and hole
                kwargs["seed"] = (settings.seed * 1_000_003 + execution.slot * 7919
                                  + execution.hole_count) % (2**31)
        if decoder in ("beam", "beam_sample"):
            kwargs.update(decoder=decoder, n=settings.n)
        elif settings.decoder == "var":
            kwargs["n"] = settings.b
        return kwargs

    async def generate(self, execution: Execution, site: HoleSite, options: dict[str, Any],
                       stream: bool, on_text: Optional[Callable[[str], None]] = None
                       ) -> list[tuple[Any, str]]:
        """The hole's generation(s), each with the bound that ended it ("" if none)."""
        kwargs = self.generate_options(execution, site, options)
        execution.hole_count += 1
        on_token = None
        if stream and (self.settings.on_event is not None or on_text is not None):
            on_token = _token_forwarder(self, execution.slot, site.name, on_text)
        max_tokens = await self.max_tokens(execution.prompt)
        result = await self.settings.model.generate(execution.model_prompt(site.name),
                                                    max_tokens, on_token=on_token, **kwargs)
        generations = result if isinstance(result, list) else [result]
        return [(g, self.limit(g, max_tokens, site, options)) for g in generations]

    def limit(self, generation: Any, max_tokens: int, site: HoleSite,
              options: dict[str, Any]) -> str:
        """What bound ended the hole, if one did rather than the model or a constraint."""
        if generation.finish_reason == "length" and len(generation.tokens) >= max_tokens:
            return f"max_len={self.settings.max_len}"
        if generation.finish_reason == "context":
            return "the model's context length"
        if int_capped(site, options.get("type") is int) \
                and len(generation.text) >= INT_MAX_CHARS:
            return f"INT_MAX_CHARS={INT_MAX_CHARS}"
        return ""

    async def fill(self, execution: Execution, site: HoleSite, options: dict[str, Any],
                   tactic: Any, on_text: Optional[Callable[[str], None]] = None
                   ) -> HoleSegment:
        """The hole's segment: one completion of the prompt so far (under beam search,
        the completion the beam keeps for this state; inside a nested query, the best
        beam). `on_text(text so far)` follows the tokens (streaming decorators)."""
        if self.beam is not None and execution.depth == 0:
            return await self.beam.fill(execution, site, options, tactic)
        generation, limit = (await self.generate(execution, site, options, stream=True,
                                                 on_text=on_text))[0]
        return _segment(site, generation, tactic, limit)


def _segment(site: HoleSite, generation: Any, tactic: Any, limit: str = "") -> HoleSegment:
    text = generation.text
    try:
        value = hole_value(text, tactic)
    except (ValueError, TypeError) as error:
        ended = f" (it ended at {limit})" if limit else ""
        raise ValueError(f"the model's text for {site.name} ({text!r}) is not a valid "
                         f"{getattr(tactic, '__name__', tactic)}{ended}: {error}") from None
    return HoleSegment(site.name, text, tuple(generation.tokens), value,
                       generation.finish_reason, site.message, limit=limit)


def _token_forwarder(runner: Runner, slot: int, name: str,
                     on_text: Optional[Callable[[str], None]] = None) -> Callable:
    """`on_token` for `generate`: hands tokens to the event loop's thread (as events,
    and as the text so far to `on_text`)."""
    import asyncio

    try:
        loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    thread = threading.get_ident()
    texts: list[str] = []

    def deliver(token: Any) -> None:
        runner.emit(slot, TokenAppended(name, token))
        if on_text is not None:
            texts.append(token.text)
            on_text("".join(texts))

    def forward(index: int, token: Any) -> None:
        if loop is not None and threading.get_ident() != thread:
            loop.call_soon_threadsafe(deliver, token)
        else:  # a cached result replays its tokens on the loop's own thread
            deliver(token)

    return forward


def _streamer(decorated: DecoratorList, context: Any) -> Callable[[str], None]:
    def stream(text: str) -> None:
        decorated.stream(text, context)

    return stream


def _is_query(function: Any) -> bool:
    """A query function (or a query bound to an object): run with `await f.run(...)`."""
    return bool(getattr(function, "__lmql_query__", False)) and hasattr(function, "run")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Beam:
    """Program-level beam search (see the module docstring).

    Executions run as tasks; one that reaches a hole waits there (`fill`). When every
    live execution waits or has finished, `expand` asks each waiting one's hole for its
    k best completions, keeps the k best states (finished ones included) by total
    log-probability, resumes the waiting executions whose candidates survive (with their
    best one), forks an execution for each further surviving candidate (replaying its
    parent's choices) and drops the rest. Rows (slots) of dropped states are reused.
    """

    def __init__(self, runner: Runner):
        self.runner = runner
        self.width = runner.settings.n
        self.normalised = runner.settings.decoder == "beam_var"
        self.finished: list[tuple[Execution, Outcome]] = []
        self.waiting: dict[Execution, tuple[HoleSite, dict, Any, anyio.Event]] = {}
        self.verdicts: dict[Execution, Any] = {}
        self.running = 0
        self.settled = anyio.Event()
        self.free_slots: list[int] = []
        self.slots = 1

    async def run(self) -> list[Outcome]:
        async with _task_group() as group:
            self.start(group, Execution(self.runner, 0), announce=True)
            while True:
                await self.settled.wait()
                self.settled = anyio.Event()
                if not self.waiting:
                    break
                await self.expand(group)
        self.finished.sort(key=lambda item: -self.score(item[0].trace))
        return [outcome for _, outcome in self.finished[:self.width]]

    def score(self, trace: Trace, segment: Optional[HoleSegment] = None) -> float:
        """What states are ranked by: the total log-probability of their holes (with
        `segment` added), under beam_var divided by their token count ** alpha."""
        logprob = trace.logprob + (segment.logprob if segment is not None else 0.0)
        if not self.normalised:
            return logprob
        tokens = sum(len(s.tokens) for s in trace.segments if isinstance(s, HoleSegment))
        tokens += len(segment.tokens) if segment is not None else 0
        return logprob / max(tokens, 1) ** BEAM_VAR_ALPHA

    async def fill(self, execution: Execution, site: HoleSite, options: dict,
                   tactic: Any) -> HoleSegment:
        """Wait at a hole until `expand` decides: its segment, or BeamDropped."""
        event = anyio.Event()
        self.waiting[execution] = (site, options, tactic, event)
        self.pause()
        await event.wait()
        verdict = self.verdicts.pop(execution)
        if isinstance(verdict, BaseException):
            raise verdict
        return verdict

    def start(self, group: Any, execution: Execution, announce: bool) -> None:
        self.running += 1

        async def go() -> None:
            try:
                outcome = await self.runner.execute(execution, announce)
                self.finished.append((execution, outcome))
            except BeamDropped:
                pass
            self.pause()

        group.start_soon(go)

    def pause(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.settled.set()

    def drop(self, execution: Execution) -> None:
        self.runner.emit(execution.slot, SequenceDropped())
        self.free_slots.append(execution.slot)

    async def expand(self, group: Any) -> None:
        waiting = list(self.waiting.items())
        self.waiting.clear()
        candidates: list[list[HoleSegment]] = [[] for _ in waiting]

        async def expand_one(i: int, execution: Execution, site: HoleSite, options: dict,
                             tactic: Any) -> None:
            generations = await self.runner.generate(execution, site, options, stream=False)
            segments = [_segment(site, g, tactic, limit) for g, limit in generations]
            distinct: dict[tuple, HoleSegment] = {}  # samples may repeat: each token
            for segment in segments:  # sequence once (LMQL's token_unique)
                distinct.setdefault(tuple(t.token_id for t in segment.tokens), segment)
            candidates[i] = list(distinct.values())

        async with _task_group() as inner:
            for i, (execution, (site, options, tactic, _)) in enumerate(waiting):
                inner.start_soon(expand_one, i, execution, site, options, tactic)
        pool: list[tuple[float, Execution, Optional[HoleSegment]]] = [
            (self.score(execution.trace), execution, None) for execution, _ in self.finished]
        for (execution, _), segments in zip(waiting, candidates):
            pool += [(self.score(execution.trace, s), execution, s) for s in segments]
        pool.sort(key=lambda item: -item[0])
        kept = pool[:self.width]
        kept_finished = {id(e) for _, e, s in kept if s is None}
        for item in list(self.finished):
            if id(item[0]) not in kept_finished:
                self.finished.remove(item)
                self.drop(item[0])
        children: list[tuple[Execution, HoleSegment]] = []
        for _, execution, segment in kept:
            if segment is None:
                continue
            if execution in self.verdicts:
                children.append((execution, segment))
            else:
                self.verdicts[execution] = segment  # the state itself goes on
        for execution, _ in waiting:
            if execution not in self.verdicts:
                self.verdicts[execution] = BeamDropped()
                self.drop(execution)
        for parent, segment in children:
            slot = self.free_slots.pop(0) if self.free_slots else self.slots
            self.slots = max(self.slots, slot + 1)
            trace = parent.trace.copy()
            trace.segments.append(segment)
            self.runner.emit(slot, SequenceStarted(trace, parent.slot))
            self.start(group, Execution(self.runner, slot, parent.choices + [segment]),
                       announce=False)
        self.running += len(waiting)
        for _, (_, _, _, event) in waiting:
            event.set()


async def run_nested(parent: Execution, site: HoleSite, tactic: Any,
                     outer_where: Optional[Where]) -> NestedSegment:
    """Run the nested query `tactic` names for hole `site` of `parent`; its segment."""
    target = nested_target(tactic)
    assert target is not None
    function, args, kwargs = target
    signature = getattr(function, "signature", None)
    parameters = set(signature.parameters if signature is not None
                     else function.program.parameters)
    refused = [k for k in kwargs if k in OPTIONS and k not in parameters]  # LMQL's rule
    if refused:
        raise ValueError(f"[{site.name}: {function.__name__}(...)]: a nested query runs with "
                         f"the outer program's model and decoder; it takes no "
                         f"{', '.join(refused)}=")
    is_method = getattr(tactic if not isinstance(tactic, DeferredCall) else tactic.function,
                        "bound_to", None) is not None
    label = describe_call(function, args, kwargs, is_method)
    arguments = function._arguments(args, kwargs)
    outer = parent.runner
    runner = Runner(function.program, function._function, arguments, outer.settings)
    runner.emit = outer.emit  # type: ignore[method-assign]  # one stream of events
    runner.outer_where = _joined(getattr(outer, "outer_where", None), outer_where)
    runner._tokenizer = outer._tokenizer
    child = Execution(runner, parent.slot)
    child.prompt = parent.prompt
    child.hole_count = parent.hole_count
    child.depth = parent.depth + 1
    child.outer = parent.outer + parent.trace.segments  # chat tags before the hole count
    parent.emit(NestedStarted(site.name, label))
    await _checkpoint(parent)
    value = await function._function(child, **arguments)
    parent.hole_count = child.hole_count
    outer._tokenizer = runner._tokenizer
    added = child.prompt[len(parent.prompt):]
    returned = value is not NO_VALUE and not isinstance(value, LMQLResult)
    text = str(value) if returned else added
    segment = NestedSegment(site.name, label, child.trace, text,
                            value if returned else added, hidden=returned)
    parent.emit(NestedFinished(segment))
    return segment


async def _checkpoint(parent: Execution) -> None:
    """Have the model's prefix cache hold the outer prompt before the inner query adds
    its text. The inner query's holes continue it, and so does the outer prompt after the
    nested query, which a hidden inner text is no prefix of: without this state, the next
    hole would compute the whole prompt again. Only the in-process transformers engine
    continues the longest cached prefix (llama.cpp continues within the run's continuation
    block without this: its states are cut back to the shared start; a remote server's
    cache is its own), so only there is this done. Scoring one one-token value
    runs the prefix alone. (`cache=False` turns the prefix cache off too: then nothing.)"""
    if not parent.runner.settings.cache:
        return
    model = parent.runner.settings.model
    if not model.model_identifier.startswith("local:"):
        return
    text = stable_prefix(parent.prompt)
    if len(text) >= 32:
        await model.score(text, [" ."], cache=parent.runner.settings.cache)


def _joined(first: Optional[Where], second: Optional[Where]) -> Optional[Where]:
    return join_where(first, second)
