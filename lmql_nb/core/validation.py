"""Checks of values a user gives, with one wording for every entry point.

The API (`generate`'s options), the backends' options, the magics, the command line and
the server's request fields all check through `Rule`, so they accept and refuse the same
values with the same words:

    n must be an int >= 1, got 0
    top_p must be a number in (0, 1], got 1.5
    decoder must be one of argmax, sample, beam, got 'greedy'

A wrong type is a TypeError, a value out of range a ValueError. Options declared as a
class (`Options`, fields made with `option(...)`) get their checks, their
unknown-option errors and their documentation (`Options.markdown()`) from the
declaration.

    check_int("n", value, minimum=1)
    Rule("number", minimum=0, maximum=1, open_minimum=True).check("top_p", value)
    parse = Rule("int", minimum=0).parse_text       # argparse's type=: from a command line
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Iterable, Mapping, Optional, Sequence, TypeVar

KINDS = ("int", "number", "bool", "choice", "str", "strings")


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one value may be.

    kind: "int", "number" (int or float, not NaN), "bool", "choice" (one of `choices`),
        "str" (non-empty unless `allow_empty`), "strings" (a str or a list of them, as
        stop strings are; checked as valid Unicode, returned as a tuple).
    minimum/maximum: inclusive bounds (numbers); `open_minimum` excludes the minimum.
    optional: None is accepted too.
    unit: words after "a number" ("of seconds").
    secret: the value never appears in an error message.
    """

    kind: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    open_minimum: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    unit: str = ""
    allow_empty: bool = False
    secret: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown rule kind {self.kind!r}; accepted: {', '.join(KINDS)}")

    # wording ----------------------------------------------------------------------------

    def accepted(self, with_none: bool = True) -> str:
        """What is accepted, as the tail of "NAME must be ...": "an int >= 1"."""
        if self.kind in ("int", "number"):
            text = ("an int" if self.kind == "int" else "a number") + \
                (f" {self.unit}" if self.unit else "") + self._bounds()
        elif self.kind == "bool":
            return "True, False or None" if self.optional and with_none else "True or False"
        elif self.kind == "choice":
            text = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.kind == "str":
            text = "a str" if self.allow_empty else "a non-empty str"
        else:
            text = "a str or a list of str"
        return text + (" or None" if self.optional and with_none else "")

    def _bounds(self) -> str:
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f" in {'(' if self.open_minimum else '['}{_num(low)}, {_num(high)}]"
        if low is not None:
            return f" {'>' if self.open_minimum else '>='} {_num(low)}"
        if high is not None:
            return f" <= {_num(high)}"
        return ""

    def _shown(self, value: Any) -> str:
        return "<hidden>" if self.secret else repr(value)

    def type_error(self, name: str, value: Any) -> TypeError:
        return TypeError(f"{name} must be {self.accepted()}, got {type(value).__name__} "
                         f"{self._shown(value)}")

    def value_error(self, name: str, value: Any) -> ValueError:
        return ValueError(f"{name} must be {self.accepted()}, got {self._shown(value)}")

    # checking ---------------------------------------------------------------------------

    def check(self, name: str, value: Any) -> Any:
        """`value` if it is acceptable (numbers as float, strings as a tuple), else a
        TypeError/ValueError naming `name` and what is accepted."""
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self.type_error(name, value)
            return value
        if self.kind == "choice":
            if not is_hashable(value) or value not in self.choices:
                raise self.value_error(name, value)
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise self.type_error(name, value)
            if not value and not self.allow_empty:
                raise self.value_error(name, value)
            return value
        if self.kind == "strings":
            return check_strings(name, value, allow_empty_items=self.allow_empty)
        if isinstance(value, bool) or not isinstance(
                value, int if self.kind == "int" else (int, float)):
            raise self.type_error(name, value)
        if math.isnan(value) or not self._in_bounds(value):
            raise self.value_error(name, value)
        return float(value) if self.kind == "number" else value

    def _in_bounds(self, value: float) -> bool:
        if self.minimum is not None and (value <= self.minimum if self.open_minimum
                                         else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def parse_text(self, text: str, name: str = "the value") -> Any:
        """The value a command line's `text` stands for, checked; ValueError (which
        argparse reports as a usage error) in the same words as `check`."""
        if self.kind in ("int", "number"):
            try:
                value: Any = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"{name} must be {self.accepted(with_none=False)}, "
                                 f"got {text!r}") from None
        elif self.kind == "bool":
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{name} must be {self.accepted(with_none=False)}, "
                                 f"got {text!r}")
            value = lowered in ("true", "1", "yes")
        else:
            value = text
        return self.check(name, value)

    def argparse_type(self, name: str) -> Any:
        """A `type=` for argparse: parses and checks, failing in this module's words."""
        import argparse

        def parse(text: str) -> Any:
            try:
                return self.parse_text(text, name)
            except (TypeError, ValueError) as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        parse.__name__ = self.kind  # what argparse names in "invalid <type> value"
        return parse


def _num(value: float) -> str:
    return f"{value:g}"


def is_hashable(value: Any) -> bool:
    """True if `value` can be hashed (a dict key, part of a cache key)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


# shorthands -------------------------------------------------------------------------------

def check_int(name: str, value: Any, minimum: Optional[int] = None,
              maximum: Optional[int] = None, *, optional: bool = False) -> Any:
    """`value` if it is an int (not a bool) within the bounds; else TypeError/ValueError."""
    return Rule("int", minimum, maximum, optional=optional).check(name, value)


def check_number(name: str, value: Any, minimum: Optional[float] = None,
                 maximum: Optional[float] = None, *, open_minimum: bool = False,
                 optional: bool = False, unit: str = "") -> Any:
    """`value` as a float if it is a number (not a bool, not NaN) within the bounds."""
    return Rule("number", minimum, maximum, open_minimum, optional=optional,
                unit=unit).check(name, value)


def check_bool(name: str, value: Any, *, optional: bool = False) -> Any:
    """`value` if it is True or False."""
    return Rule("bool", optional=optional).check(name, value)


def check_choice(name: str, value: Any, choices: Sequence[Any], *,
                 optional: bool = False) -> Any:
    """`value` if it is one of `choices`."""
    return Rule("choice", choices=tuple(choices), optional=optional).check(name, value)


def check_strings(name: str, value: Any, allow_empty_items: bool = False) -> tuple[str, ...]:
    """A str or a list/tuple of str (stop strings, choices) as a tuple without repeats;
    every item valid Unicode, and non-empty unless `allow_empty_items`."""
    from .text import check_text

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a str or a list of str, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}")
        if not item and not allow_empty_items:
            raise ValueError(f"{name}[{i}] is empty: a stop string needs at least one character")
        check_text(item, f"{name}[{i}]")
    return tuple(dict.fromkeys(value))


def unknown_options(where: str, unknown: Iterable[str], accepted: Iterable[str]) -> TypeError:
    """The error for options nobody declared: "WHERE got unknown option 'x'; accepted
    options are: a, b"."""
    names = sorted(unknown)
    label = "option" if len(names) == 1 else "options"
    return TypeError(f"{where} got unknown {label} {', '.join(map(repr, names))}; accepted "
                     f"options are: {', '.join(sorted(accepted)) or '(none)'}")


# options declared as a class --------------------------------------------------------------

def option(default: Any, description: str, kind: str, **rule: Any) -> Any:
    """A field of an `Options` class: its default, a one-line description, and its rule
    (`kind` and `Rule`'s keywords: minimum, maximum, choices, optional, ...)."""
    return dataclasses.field(default=default, metadata={
        "rule": Rule(kind, **rule), "description": description})


SelfOptions = TypeVar("SelfOptions", bound="Options")


@dataclasses.dataclass(frozen=True)
class Options:
    """The options of one backend (or other component), declared once as a frozen
    dataclass whose fields are made with `option(...)`:

        @dataclasses.dataclass(frozen=True)
        class ToyOptions(Options):
            bias: float = option(0.0, "added to every logit", "number", minimum=-10, maximum=10)

    `ToyOptions.parse(given, "model 'toy:x'")` checks a dict of keyword options against the
    declaration and returns the instance; `markdown()` documents them.
    """

    #: a note for the documentation table (e.g. which options need which extra)
    NOTE: ClassVar[str] = ""

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field, ...]:
        return tuple(f for f in dataclasses.fields(cls) if "rule" in f.metadata)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    @classmethod
    def parse(cls: type[SelfOptions], given: Mapping[str, Any], where: str) -> SelfOptions:
        """The options in `given`, checked; unknown names are a TypeError naming all
        accepted ones, bad values a TypeError/ValueError naming what is accepted."""
        fields = {f.name: f for f in cls.fields()}
        unknown = set(given) - set(fields)
        if unknown:
            raise unknown_options(where, unknown, fields)
        return cls(**{name: fields[name].metadata["rule"].check(name, value)
                      for name, value in given.items()})

    @classmethod
    def markdown(cls) -> str:
        """A Markdown table of the options: name, default, what is accepted, description."""
        rows = ["| option | default | accepted | meaning |", "|---|---|---|---|"]
        for f in cls.fields():
            rule: Rule = f.metadata["rule"]
            rows.append(f"| `{f.name}` | `{f.default!r}` | {rule.accepted()} | "
                        f"{f.metadata['description']} |")
        return "\n".join(rows)


@dataclasses.dataclass(frozen=True)
class NoOptions(Options):
    """For a backend that takes no options."""
