"""Inference certificates: a record of the model calls behind a result, to document,
trace and reproduce it (LMQL's `lmql.traced`, `lmql.certificate`, `certificate=`).

    with lmql_nb.traced("my-context") as t:
        answer = say_hello()
        more = lmql_nb.generate_sync("Greet the animals of the world:", max_tokens=10)
    print(lmql_nb.certificate(t))     # JSON: every model call made in the block

Every `LLM.generate` and `LLM.score` made while a tracer is active (in this context: the
tracer follows `await`, tasks and lmql_nb's `_sync` calls) adds an event: the model id,
its options, the prompt and its token ids as the model read them, the call's options and
what it returned. A query run with `certificate=` (True: print it; a path: write it
there; a callable: call it with the certificate) records its calls and its results. A
certificate has its events, the certificates of the queries inside it (`children`),
metrics over all of them (requests, tokens), the time and the versions in use. Nothing
secret is recorded: model options named like keys or tokens are redacted.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import sys
import time
from typing import Any, Iterator, Optional

#: model option names whose values a certificate never shows
REDACTED = ("api_key", "key", "token", "secret", "password", "authorization")


@dataclasses.dataclass
class Tracer:
    """The events and child tracers of one traced context."""

    name: str
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    children: list["Tracer"] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.time)

    def event(self, name: str, data: Any) -> None:
        """Record an event."""
        self.events.append({"name": name, "data": data})


_active: contextvars.ContextVar[Optional[Tracer]] = contextvars.ContextVar(
    "lmql_nb_tracer", default=None)


def active_tracer() -> Optional[Tracer]:
    """The innermost tracer of this context, if any."""
    return _active.get()


@contextlib.contextmanager
def traced(name: str = "trace") -> Iterator[Tracer]:
    """Record the model calls made inside the block (nested in an enclosing tracer as its
    child); `certificate(tracer)` turns the record into a certificate."""
    if not isinstance(name, str):
        raise TypeError(f"traced() takes a name str, got {type(name).__name__}")
    tracer = Tracer(name)
    parent = _active.get()
    if parent is not None:
        parent.children.append(tracer)
    token = _active.set(tracer)
    try:
        yield tracer
    finally:
        _active.reset(token)


def record(name: str, data: dict[str, Any]) -> None:
    """Add an event to the active tracer (nothing when none is active)."""
    tracer = _active.get()
    if tracer is not None:
        tracer.event(name, data)


def model_options(options: Any) -> dict[str, Any]:
    """A model's options for a certificate, secrets redacted."""
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.asdict(options)
    if not isinstance(options, dict):
        return {}
    return {k: ("<removed>" if any(word in k.lower() for word in REDACTED) else _plain(v))
            for k, v in options.items()}


def _plain(value: Any) -> Any:
    """`value` as JSON data (anything else as its repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return repr(value)


class InferenceCertificate:
    """A certificate: `asdict()` gives its data, `str()` its JSON."""

    def __init__(self, tracer: Tracer):
        self.tracer = tracer

    def asdict(self) -> dict[str, Any]:
        return _certificate_data(self.tracer, top=True)

    def __str__(self) -> str:
        return json.dumps(self.asdict(), indent=4, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"<InferenceCertificate {self.tracer.name!r}: {len(self.tracer.events)} events>"


def certificate(tracer: Tracer) -> InferenceCertificate:
    """The certificate of everything `tracer` recorded (see `traced`)."""
    if not isinstance(tracer, Tracer):
        raise TypeError(f"certificate() takes the tracer `with lmql_nb.traced(...) as t` "
                        f"gives, got {type(tracer).__name__}")
    return InferenceCertificate(tracer)


def _metrics(tracer: Tracer) -> dict[str, Any]:
    requests = tokens = 0
    for event in tracer.events:
        if event["name"] in ("lmql_nb.generate", "lmql_nb.score"):
            requests += 1
            tokens += int(event["data"].get("tokens", 0))
    for child in tracer.children:
        inner = _metrics(child)["lmql_nb"]
        requests += inner["requests"]
        tokens += inner["tokens"]
    return {"lmql_nb": {"requests": requests, "tokens": tokens}}


def _certificate_data(tracer: Tracer, top: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": tracer.name,
        "type": "lmql_nb.InferenceCertificate",
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(tracer.started)),
        "events": [{"name": e["name"], "data": _plain(e["data"])} for e in tracer.events],
    }
    if tracer.children:
        data["children"] = [_certificate_data(child) for child in tracer.children]
    data["metrics"] = _metrics(tracer)
    if top:
        data["environment"] = _environment()
    return data


def _environment() -> dict[str, str]:
    """lmql_nb's version and those of the libraries in use."""
    from ..core.version import VERSION

    versions = {"lmql_nb": VERSION, "python": sys.version.split()[0]}
    for module in ("torch", "transformers", "llama_cpp", "llguidance", "openai"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            versions[module] = str(getattr(loaded, "__version__", "unknown"))
    return versions


def deliver(certificate_option: Any, tracer: Tracer) -> None:
    """Hand a query's certificate over as `certificate=` asks: True prints it, a path
    writes it there, a callable is called with it."""
    made = InferenceCertificate(tracer)
    if certificate_option is True:
        print(made, flush=True)
    elif isinstance(certificate_option, str):
        with open(certificate_option, "w", encoding="utf-8") as file:
            file.write(str(made))
    elif callable(certificate_option):
        certificate_option(made)


def check_option(value: Any) -> None:
    """`certificate=` takes True/False, a file path or a callable."""
    if not (isinstance(value, (bool, str)) or callable(value)):
        raise TypeError(f"certificate= takes True (print it), a file path or a callable, "
                        f"got {type(value).__name__}")
