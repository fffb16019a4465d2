"""Query options are declared once (`lmql_nb.query.options`): every declared option is
accepted by `run` and `query` and reaches the run's `Settings` under its own name, and
`Settings`' fields, `OPTIONS` and the transport options all come from the declaration."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Optional

import pytest

import lmql_nb
from lmql_nb.core.validation import Rule
from lmql_nb.query import runtime
from lmql_nb.query.options import (DEFAULTS, OPTIONS, TRANSPORT_OPTIONS, Flag, Settings,
                                   declared, query_option)

PROGRAM = '"Q: Say hello\\nA:[ANSWER]" where len(TOKENS(ANSWER)) < 3'


class Recorder:
    """An event callback that keeps what it was called with."""

    def __init__(self) -> None:
        self.calls: list = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


@dataclasses.dataclass
class Case:
    """A value for one option, the options it needs beside it, and what to check: the
    Settings field (`expected`, or `check(settings)`) and what the run did (`after`)."""

    value: Any
    needs: dict = dataclasses.field(default_factory=dict)
    expected: Any = None  # None: the value itself
    check: Optional[Callable[[Settings], bool]] = None
    after: Optional[Callable[[], bool]] = None


def cases(llm: Any) -> dict[str, Callable[[], Case]]:
    """A case for each option (made afresh per run: callbacks record per run). An option
    added to the declaration without a case here fails `test_every_option_...`."""
    def on_event() -> Case:
        recorder = Recorder()
        return Case(recorder, after=lambda: bool(recorder.calls))

    def writer() -> Case:
        recorder = Recorder()  # folded into on_event: the events reach it
        return Case(recorder, check=lambda s: s.on_event is not None and s.output_writer is None,
                    after=lambda: bool(recorder.calls))

    def certificate() -> Case:
        recorder = Recorder()  # handed the certificate after the run (a call's is taken
        # before the settings, a decorator's is among them)
        return Case(recorder, check=lambda s: s.certificate in (False, recorder),
                    after=lambda: len(recorder.calls) == 1)

    return {
        "model": lambda: Case(llm),
        "decoder": lambda: Case("sample"),
        "n": lambda: Case(2, {"decoder": "sample"}),
        "b": lambda: Case(3, {"decoder": "var"}),
        "k": lambda: Case(2, {"decoder": "best_k", "n": 3}),
        "temperature": lambda: Case(0.5),
        "top_k": lambda: Case(3, {"decoder": "sample"}),
        "top_p": lambda: Case(0.9, {"decoder": "sample"}),
        "seed": lambda: Case(7, {"decoder": "sample"}),
        "repetition_penalty": lambda: Case(1.3),
        "frequency_penalty": lambda: Case(0.5),
        "presence_penalty": lambda: Case(-0.5),
        "max_len": lambda: Case(512),
        "top_logprobs": lambda: Case(2),
        "cache": lambda: Case(False),
        "on_event": on_event,
        "verbose": lambda: Case(True, check=lambda s: s.verbose and s.on_event is not None),
        "chunksize": lambda: Case(4),
        "output_writer": writer,
        "inputs": lambda: Case(["hi"], expected=("hi",)),
        "certificate": certificate,
        "chunk_timeout": lambda: Case(10.0),
        "openai_nonstop": lambda: Case(True),
    }


@pytest.fixture
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


def test_settings_fields_are_the_declared_options():
    assert runtime.Settings is Settings  # the runtime reads the declaration itself
    assert tuple(f.name for f in dataclasses.fields(Settings)) == OPTIONS
    assert OPTIONS == tuple(o.name for o in declared())
    assert TRANSPORT_OPTIONS == ("chunk_timeout", "openai_nonstop")
    # LMQL's option names are all there (language-decoding.md, "Runtime Parameters" and
    # the decoder arguments), and every one has a line of help
    assert {"model", "decoder", "n", "temperature", "max_len", "chunksize", "verbose",
            "cache", "certificate", "chunk_timeout", "openai_nonstop"} <= set(OPTIONS)
    assert all(o.help.strip() for o in declared())
    # the defaults a run falls back on are the declaration's
    assert DEFAULTS["max_len"] == 2048 and DEFAULTS["top_logprobs"] == 5
    assert "model" not in DEFAULTS


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_is_accepted_by_run_and_query_and_reaches_its_setting(
        name, llm, settings_seen):
    made = cases(llm)
    assert name in made, f"the query option {name} has no case in this test: add one"
    for call in ("run", "query"):
        case = made[name]()
        kwargs = {"model": llm, **case.needs, name: case.value}
        settings_seen.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # chunksize and the transport options warn
            if call == "run":
                result = lmql_nb.run_sync(PROGRAM, **kwargs)
            else:
                result = lmql_nb.query(PROGRAM, is_async=False, **kwargs)()
        assert result is not None
        settings = settings_seen[-1]
        if case.check is not None:
            assert case.check(settings), (call, name, settings)
        else:
            expected = case.value if case.expected is None else case.expected
            assert getattr(settings, name) == expected, (call, name, settings)
        if case.after is not None:
            assert case.after(), (call, name)


def test_an_unknown_option_is_refused_naming_the_declared_ones(llm):
    with pytest.raises(TypeError, match="got an unknown keyword 'patience'; query options "
                       "are: " + ", ".join(OPTIONS)):
        lmql_nb.query(PROGRAM, model=llm, patience=3)


@dataclasses.dataclass(frozen=True)
class WithPatience(Settings):
    """A copy of the declaration with one option more."""

    patience: int = query_option(3, "how long to wait", rule=Rule("int", minimum=0),
                                 flag=Flag("P"))


def test_an_option_added_to_the_declaration_is_one_field():
    options = declared(WithPatience)
    assert tuple(o.name for o in options) == OPTIONS + ("patience",)
    added = options[-1]
    assert (added.default, added.flags, added.help) == (3, ("--patience",), "how long to wait")
    settings = WithPatience(model=None, patience=5)  # type: ignore[arg-type]
    assert settings.patience == 5 and settings.max_len == DEFAULTS["max_len"]


def test_a_flag_needs_the_rule_that_parses_it():
    with pytest.raises(ValueError, match="needs the option's rule"):
        query_option(None, "no rule", flag=Flag("X"))
    with pytest.raises(ValueError, match="accepted are value, model, variable"):
        Flag("X", gives="file")
