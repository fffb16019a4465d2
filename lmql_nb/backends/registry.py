"""Model ids: which backend serves `lmql_nb.model(id)`, and one shared instance per id.

A backend registers the prefix of its ids, a factory and its options class:

    lmql_nb.register_backend("toy:", ToyBackend, options=ToyOptions,
                             forms=[("toy:<name>", "a toy model")])

and `lmql_nb.model("toy:x", **options)` then checks the options against `ToyOptions` and
calls `ToyBackend("toy:x", "x", ToyOptions(...))`. The built-in backends register the
same way: each backend folder declares its `REGISTRATION`, `backends/builtin.py` lists
them, and the registry registers that list the first time an id is looked up (so the
registry imports the list, and nothing it lists imports the registry). Installed
packages register through the entry point group `lmql_nb.backends`, whose entries
name a function without arguments that calls `register_backend` (loaded when an id
matches no registered prefix). Error messages list the accepted forms from these registrations.

`endpoint=` works with any id: the model is served elsewhere ("host:port", a URL, or a
named endpoint such as "jupyter", see `register_endpoint`), and the OpenAI-compatible
client backend talks to it.

One `LLM` instance is shared per id and options, so a notebook that calls
`lmql_nb.model("local:gemma-3-270m")` in many cells loads the model once.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Callable, Optional, Sequence, TypeVar

from .base import (Backend, BackendFactory, EndpointRegistration, EndpointResolver,
                   Registration)
from ..core.validation import NoOptions, Options, is_hashable

#: the entry point group of backends that installed packages provide
ENTRY_POINT_GROUP = "lmql_nb.backends"

_lock = threading.RLock()
_backends: dict[str, Registration] = {}
_endpoints: dict[str, EndpointRegistration] = {}
# the backend that talks to served models (the OpenAI-compatible client), from builtin.py
_endpoint_client: Optional[Registration] = None
_plugins_seen: set[tuple[str, str]] = set()
_builtins_registered = False


def register_backend(prefix: str, factory: BackendFactory, *,
                     options: type[Options] = NoOptions,
                     forms: Optional[Sequence[tuple[str, str]]] = None,
                     replace: bool = False) -> None:
    """Serve model ids that start with `prefix` (e.g. "myprovider:") with
    `factory(model_id, name, options)`, `name` being the id after the prefix.

    `options` is a frozen dataclass deriving from `lmql_nb.core.validation.Options` whose fields
    (made with `option(...)`) declare what `lmql_nb.model(id, **options)` accepts; the
    factory receives the checked instance. `forms` are (id form, description) pairs for
    error messages and docs (default: "<prefix><name>"). Registering a prefix that is
    taken raises ValueError unless `replace=True`.
    """
    if not isinstance(prefix, str) or len(prefix) < 2 or prefix[-1] not in ":/" \
            or not prefix[:-1].strip():
        raise ValueError(f"a backend prefix is a name followed by ':' or '/', e.g. "
                         f"'myprovider:'; got {prefix!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if not (isinstance(options, type) and issubclass(options, Options)):
        raise TypeError("options must be a subclass of lmql_nb.core.validation.Options")
    registration = Registration(prefix, factory, options,
                                tuple(forms) if forms else ((f"{prefix}<name>", ""),))
    with _lock:
        taken = _backends.get(prefix)
        if taken is not None and not replace and taken != registration:
            raise ValueError(f"the backend prefix {prefix!r} is registered already (by "
                             f"{_qualname(taken.factory)}); pass replace=True to replace it")
        _backends[prefix] = registration


def unregister_backend(prefix: str) -> None:
    """Forget the backend registered for `prefix` (models made already keep working)."""
    with _lock:
        _backends.pop(prefix, None)


def register_endpoint(name: str, resolve: EndpointResolver, description: str = "") -> None:
    """Make `endpoint=name` mean the server `resolve(model_id)` names: a dict with
    "base_url", "name" and "api_key" (called once, when the model is first used)."""
    with _lock:
        _endpoints[name] = EndpointRegistration(name, resolve, description)


def set_endpoint_client(factory: Callable[..., Backend], options: type[Options]) -> None:
    """The backend `endpoint=` models use: `factory(model_id, endpoint, options,
    connect=None)` (the built-in OpenAI-compatible client)."""
    global _endpoint_client
    with _lock:
        _endpoint_client = Registration("", factory, options, ())


def accepted_forms() -> str:
    """Every accepted id form, as one line for error messages."""
    _ensure_builtins()
    _load_plugins()
    with _lock:
        forms = [f"'{form}'" + (f" ({what})" if what else "")
                 for registration in _backends.values() for form, what in registration.forms]
        forms.append("'<name>' with endpoint='host:port' (a model served by `python -m "
                     "lmql_nb serve` or vLLM)")
        forms += [f"'...' with endpoint='{e.name}'" + (f" ({e.description})" if e.description
                                                       else "") for e in _endpoints.values()]
    return ", ".join(forms)


def registrations() -> list[Registration]:
    """The registered backends (built-in ones first), for docs and tools."""
    _ensure_builtins()
    _load_plugins()
    with _lock:
        return list(_backends.values())


def create_backend(model_id: str, **options: Any) -> Backend:
    """The (not yet loaded) backend for `model_id`; raises for ids it cannot serve."""
    if not isinstance(model_id, str):
        raise TypeError(f"a model id must be a str, got {type(model_id).__name__}; "
                        f"accepted forms: {accepted_forms()}")
    _ensure_builtins()
    if "endpoint" in options:
        return _endpoint_backend(model_id, options)
    registration = _match(model_id)
    if registration is None:
        _load_plugins()
        registration = _match(model_id)
    if registration is None:
        hint = f" (did you mean 'local:{model_id}'?)" if ":" not in model_id else ""
        raise ValueError(f"unknown model id {model_id!r}{hint}; accepted forms: "
                         f"{accepted_forms()}")
    name = model_id[len(registration.prefix):]
    if not name:
        raise ValueError(f"model id {model_id!r} names no model after {registration.prefix!r}"
                         f"; accepted forms: {accepted_forms()}")
    checked = registration.options.parse(options, f"model {model_id!r}")
    return registration.factory(model_id, name, checked)


def _match(model_id: str) -> Optional[Registration]:
    with _lock:
        matches = [r for prefix, r in _backends.items() if model_id.startswith(prefix)]
    return max(matches, key=lambda r: len(r.prefix)) if matches else None


def _endpoint_backend(model_id: str, options: dict) -> Backend:
    """`model("NAME", endpoint="127.0.0.1:8080")`: NAME served at that endpoint."""
    options = dict(options)
    endpoint = options.pop("endpoint")
    with _lock:
        client = _endpoint_client
        named = _endpoints.get(endpoint) if isinstance(endpoint, str) else None
    if client is None:
        raise RuntimeError("no backend for endpoint= models is registered")
    checked = client.options.parse(options, f"model {model_id!r}")
    factory: Callable[..., Backend] = client.factory
    if named is not None:  # e.g. "jupyter": a server the Jupyter extension starts
        resolve = named.resolve
        return factory(model_id, endpoint, checked, connect=lambda: resolve(model_id))
    return factory(model_id, endpoint, checked)


def _ensure_builtins() -> None:
    global _builtins_registered
    with _lock:
        if _builtins_registered:
            return
        _builtins_registered = True
        from .builtin import BACKENDS, ENDPOINT_CLIENT, ENDPOINTS

        for registration in BACKENDS:
            register_backend(registration.prefix, registration.factory,
                             options=registration.options, forms=registration.forms)
        set_endpoint_client(ENDPOINT_CLIENT.factory, ENDPOINT_CLIENT.options)
        for endpoint in ENDPOINTS:
            register_endpoint(endpoint.name, endpoint.resolve, endpoint.description)


def _load_plugins() -> None:
    """Run the registration function of every `lmql_nb.backends` entry point not run yet
    (a package installed, or put on sys.path, mid-session is found too)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        key = (entry.name, entry.value)
        with _lock:
            if key in _plugins_seen:
                continue
            _plugins_seen.add(key)
        try:
            entry.load()()
        except Exception as error:  # one broken plugin must not break every model id
            warnings.warn(f"lmql_nb: the backend plugin {entry.name!r} ({entry.value}) "
                          f"failed to register: {type(error).__name__}: {error}",
                          RuntimeWarning, stacklevel=3)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


T = TypeVar("T")
_instances: dict[Any, Any] = {}
_instances_lock = threading.Lock()


def shared_instance(model_id: str, options: dict[str, Any], create: Callable[[], T]) -> T:
    """The one instance for (model_id, options), made by `create()` the first time."""
    try:
        key = (model_id, frozenset(options.items()))
        hash(key)
    except TypeError:
        unhashable = sorted(k for k, v in options.items() if not is_hashable(v))
        raise TypeError("model options must be hashable values (str, int, float, bool, "
                        f"None, tuple); not hashable: {', '.join(unhashable)}") from None
    with _instances_lock:
        if key not in _instances:
            _instances[key] = create()
        return _instances[key]

