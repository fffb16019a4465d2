"""What happened inside one query program execution: the data the trace view draws.

A `Trace` is the prompt of one program execution as a list of segments, in order:

- `TextSegment`: prompt text as the program wrote it (after `{expr}` interpolation and
  `[[`/`{{` unescaping);
- `HoleSegment`: a hole `[NAME]` the model filled: its name, the text it generated (what
  the prompt gained), the generated tokens (`lmql_nb.core.results.TokenInfo`, with their
  log-probabilities and top alternatives) and the Python value the program saw (the text,
  or an `int` / dataclass / pydantic instance for typed holes);
- `RoleSegment`: a chat tag (`{:user}`, ...): the text after it is that role's turn;
- `DistributionSegment`: a `distribution X in [...]` clause: the values, their
  probabilities (a softmax over the values' summed log-probabilities, as LMQL's `P(X)`)
  and the chosen (most likely) value, which the prompt gained.
- `NestedSegment`: a hole filled by a nested query (`[X: q(args)]`): the inner query's
  own trace (what it added to the prompt, holes included), what the prompt gained from
  it (`text`) and the hole's value; `hidden` when the inner instructions were taken out
  of the prompt again (the query returned a value).
- `StepSegment`: a step of the program that is not the model's: a hole decorator
  (`[@fn X]`) or a tool call (an awaited call, or a call interpolated into the prompt as
  `{calc(EXPR)}`); `text` is what the prompt gained from it (often nothing).

Joining every segment's `text` gives the final prompt (`Trace.prompt`). Everything here
is plain data: no notebook imports, `to_data()` gives JSON-ready dicts and `from_data`
reads them back, for static rendering (`to_html`) and for the wire.

Streaming: the runtime accepts `on_event(sequence_index, event)` (see `EventCallback`),
called from the runtime's event loop while the program runs. `sequence_index` is the row:
one per sample (`sample(n=k)` runs k executions, indices 0..k-1) or per beam slot. Events:

- `SequenceStarted(trace)`: row `sequence_index` (re)starts with the segments in `trace`
  (empty for a fresh execution; a copy of the parent's segments when a beam forks). A view
  replaces whatever the row showed before.
- `TextAppended(text)`: a `TextSegment` was appended.
- `RoleStarted(role)`: a `RoleSegment` was appended (a chat turn begins).
- `HoleStarted(name)`: the model starts filling hole `name`.
- `TokenAppended(name, token)`: a token of hole `name` (a `TokenInfo`). Tokens may be
  reported and then superseded (beam search explores several); `HoleFinished` carries the
  final tokens.
- `HoleFinished(segment)`: the hole's final `HoleSegment` (replace the streamed tokens).
- `DistributionScored(segment)`: a `DistributionSegment` was appended.
- `StepRecorded(segment)`: a `StepSegment` (decorator or tool) was appended.
- `NestedStarted(name, query)`: hole `name` starts running the nested query `query`;
  the events up to the matching `NestedFinished` are the inner query's (they nest).
- `NestedFinished(segment)`: the nested query finished: its `NestedSegment` is appended.
- `SequenceFinished(trace)`: the execution finished; `trace` is its final trace.
- `SequenceDropped(reason)`: the row was dropped (a beam fell out of the k best).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Union

from ..core.results import TokenInfo


@dataclasses.dataclass(frozen=True)
class TextSegment:
    """Prompt text as the program wrote it."""

    text: str
    kind: str = dataclasses.field(default="text", init=False)


@dataclasses.dataclass(frozen=True)
class HoleSegment:
    """A hole the model filled: `text` is what the prompt gained, `value` what the
    program's variable `name` holds. `finish_reason` as in `Generation`. `limit` names
    the bound that ended the hole where one did, not the model or the hole's constraints:
    "max_len=2048", "the model's context length", or "INT_MAX_CHARS=20" (an integer hole
    without a length bound of its own); "" otherwise."""

    name: str
    text: str
    tokens: tuple[TokenInfo, ...] = ()
    value: Any = None
    finish_reason: str = "stop"
    #: `[@message NAME]`: text the chat's user sees
    message: bool = False
    limit: str = ""
    kind: str = dataclasses.field(default="hole", init=False)

    @property
    def logprob(self) -> float:
        """The sum of the hole's token log-probabilities."""
        return float(sum(t.logprob for t in self.tokens))


@dataclasses.dataclass(frozen=True)
class DistributionSegment:
    """A `distribution NAME in values` clause: `probs[i]` is the probability of
    `values[i]`; `chosen` (the most likely value) is the text the prompt gained."""

    name: str
    values: tuple[str, ...]
    probs: tuple[float, ...]
    chosen: str
    kind: str = dataclasses.field(default="distribution", init=False)

    @property
    def text(self) -> str:
        return self.chosen


@dataclasses.dataclass(frozen=True)
class StepSegment:
    """A decorator or tool step: `step` is "decorator" or "tool", `name` the hole it
    belongs to (decorators) or "", `label` what ran (`@screaming`, `calc(EXPR)`),
    `detail` its outcome in words, `text` what the prompt gained from it."""

    step: str
    name: str
    label: str
    detail: str = ""
    text: str = ""
    kind: str = dataclasses.field(default="step", init=False)


@dataclasses.dataclass(frozen=True)
class NestedSegment:
    """A hole `name` filled by the nested query call `query` (e.g. `one_of(['a', 'b'])`).
    `trace` is what the inner query added to the prompt, segment by segment; `text` what
    this prompt gained (the returned value's `str`, or everything the inner query added
    when it returns nothing); `hidden` when the inner text was taken out again."""

    name: str
    query: str
    trace: "Trace"
    text: str
    value: Any = None
    hidden: bool = True
    kind: str = dataclasses.field(default="nested", init=False)

    @property
    def logprob(self) -> float:
        """The inner query's holes' total log-probability."""
        return self.trace.logprob


@dataclasses.dataclass(frozen=True)
class RoleSegment:
    """A chat tag (`{:system}`, `{:user}`, `{:assistant}`): what follows is that role's
    turn, rendered by the model's chat template. It adds no text to the prompt."""

    role: str
    kind: str = dataclasses.field(default="role", init=False)

    @property
    def name(self) -> str:
        return self.role

    @property
    def text(self) -> str:
        return ""


Segment = Union[TextSegment, HoleSegment, DistributionSegment, StepSegment, NestedSegment,
                RoleSegment]


@dataclasses.dataclass
class Trace:
    """One program execution's prompt, segment by segment.

    `logprob` is the total log-probability of the holes' tokens (what beam search ranks
    by); `dropped` is True for a beam that fell out of the k best.
    """

    segments: list[Segment] = dataclasses.field(default_factory=list)
    dropped: bool = False

    @property
    def prompt(self) -> str:
        """The full prompt: every segment's text, holes filled."""
        return "".join(segment.text for segment in self.segments)

    @property
    def logprob(self) -> float:
        return float(sum(s.logprob for s in self.segments
                         if isinstance(s, (HoleSegment, NestedSegment))))

    def conversation(self) -> Optional[list[dict[str, str]]]:
        """The chat the segments write (None if the program uses no chat tags): one
        `{"role", "content"}` message per turn, consecutive tags of one role joined; text
        before the first tag is not part of it. Contents are stripped of the space after
        their tag (and closed turns of trailing space)."""
        messages: Optional[list[dict[str, str]]] = None
        for segment in _in_prompt(self.segments):
            if isinstance(segment, RoleSegment):
                messages = messages if messages is not None else []
                if not messages or messages[-1]["role"] != segment.role:
                    messages.append({"role": segment.role, "content": ""})
            elif messages:
                messages[-1]["content"] += segment.text
        if messages and len(messages) > 1 and messages[-1]["role"] != "assistant" \
                and not messages[-1]["content"].strip():
            messages.pop()  # a turn opened and left empty (a chat that ended at input())
        if messages:
            for message in messages[:-1]:
                message["content"] = message["content"].strip()
            messages[-1]["content"] = messages[-1]["content"].lstrip()
        return messages

    def holes(self) -> list[HoleSegment]:
        return [s for s in self.segments if isinstance(s, HoleSegment)]

    def copy(self) -> "Trace":
        return Trace(list(self.segments), self.dropped)

    def to_data(self) -> dict:
        """JSON-ready dicts. A hole's `value` is kept as-is when it is a str/int/float/
        bool/None and as its `repr` otherwise (`value_repr` always holds the repr)."""
        return {"segments": [_segment_to_data(s) for s in self.segments],
                "dropped": self.dropped}

    @classmethod
    def from_data(cls, data: dict) -> "Trace":
        return cls([_segment_from_data(item) for item in data["segments"]],
                   bool(data.get("dropped", False)))


def _in_prompt(segments: list) -> list:
    """`segments` as the prompt holds them: a nested query that returned nothing (its
    text stayed) as its own segments, one that returned a value as that value's text."""
    out: list = []
    for segment in segments:
        if isinstance(segment, NestedSegment) and not segment.hidden:
            out.extend(_in_prompt(segment.trace.segments))
        else:
            out.append(segment)
    return out


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else repr(value)


def _segment_to_data(segment: Segment) -> dict:
    if isinstance(segment, NestedSegment):
        return {"kind": "nested", "name": segment.name, "query": segment.query,
                "trace": segment.trace.to_data(), "text": segment.text,
                "value": _plain(segment.value), "value_repr": repr(segment.value),
                "hidden": segment.hidden}
    data = dataclasses.asdict(segment)
    if isinstance(segment, HoleSegment):
        data["value"] = _plain(segment.value)
        data["value_repr"] = repr(segment.value)
    return data


def _segment_from_data(item: dict) -> Segment:
    fields = {k: v for k, v in item.items() if k not in ("kind", "value_repr")}
    kind = item.get("kind")
    if kind == "text":
        return TextSegment(**fields)
    if kind == "hole":
        fields["tokens"] = tuple(TokenInfo.from_data(t) for t in fields.get("tokens", ()))
        return HoleSegment(**fields)
    if kind == "distribution":
        return DistributionSegment(fields["name"], tuple(fields["values"]),
                                   tuple(fields["probs"]), fields["chosen"])
    if kind == "step":
        return StepSegment(**fields)
    if kind == "nested":
        fields["trace"] = Trace.from_data(fields["trace"])
        return NestedSegment(**fields)
    if kind == "role":
        return RoleSegment(fields["role"])
    raise ValueError(f"unknown trace segment kind {kind!r}; accepted: text, hole, "
                     "distribution, step, nested, role")


# --- streaming events -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SequenceStarted:
    trace: Trace
    parent: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class TextAppended:
    text: str


@dataclasses.dataclass(frozen=True)
class RoleStarted:
    """A `RoleSegment` was appended (a chat turn begins)."""

    role: str


@dataclasses.dataclass(frozen=True)
class HoleStarted:
    name: str


@dataclasses.dataclass(frozen=True)
class TokenAppended:
    name: str
    token: TokenInfo


@dataclasses.dataclass(frozen=True)
class HoleFinished:
    segment: HoleSegment


@dataclasses.dataclass(frozen=True)
class DistributionScored:
    segment: DistributionSegment


@dataclasses.dataclass(frozen=True)
class StepRecorded:
    segment: StepSegment


@dataclasses.dataclass(frozen=True)
class NestedStarted:
    name: str
    query: str


@dataclasses.dataclass(frozen=True)
class NestedFinished:
    segment: NestedSegment


@dataclasses.dataclass(frozen=True)
class SequenceFinished:
    trace: Trace


@dataclasses.dataclass(frozen=True)
class SequenceDropped:
    reason: str = "beam"


Event = Union[SequenceStarted, TextAppended, RoleStarted, HoleStarted, TokenAppended,
              HoleFinished, DistributionScored, StepRecorded, NestedStarted, NestedFinished,
              SequenceFinished, SequenceDropped]

EventCallback = Callable[[int, Event], None]
"""`on_event(sequence_index, event)`: see the module docstring."""


def model_calls(trace: Trace) -> int:
    """The model calls behind `trace`: holes the model filled and distributions, those
    of nested queries included (not decorator or tool steps)."""
    return sum(model_calls(s.trace) if isinstance(s, NestedSegment)
               else int(s.kind in ("hole", "distribution") and not _fixed(s))
               for s in trace.segments)


def _fixed(segment: Any) -> bool:
    """A hole a pre decorator filled (no tokens, no model call)."""
    return isinstance(segment, HoleSegment) and not segment.tokens and segment.text != ""
