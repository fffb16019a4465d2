"""Model ids: what `lmql_nb.model(id)` accepts and which backend serves it.

One `LLM` instance is shared per id and options, so a notebook that calls
`lmql_nb.model("local:gemma-3-270m")` in many cells loads the model once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from .backends.base import Backend
from .endpoints import API_KEY_ENV, endpoint_url, jupyter_connect

ACCEPTED_FORMS = (
    "'local:gemma-3-270m' (the embedded default model), "
    "'local:<folder>' (a transformers save_pretrained folder), "
    "'local:<file>.gguf' (a GGUF file), "
    "'local:<hub id>' (a model already in your local Hugging Face cache), "
    "'llama.cpp:gemma-3-270m' or 'llama.cpp:<file>.gguf' (a GGUF run by llama.cpp as it is), "
    "'openai/<model>' (OpenAI, Azure OpenAI or an OpenAI-compatible server: options "
    "api_key, base_url, ...), "
    "'<name>' with endpoint='host:port' (a model served by `python -m lmql_nb serve` or vLLM), "
    "'local:...' with endpoint='jupyter' (served by the Jupyter server extension)"
)

#: named endpoints: `endpoint=NAME` asks `connect(model_id)` where the model is served
#: (a dict with "base_url", "name" and "api_key"), on first use
_named_endpoints: dict[str, Callable[[str], dict]] = {"jupyter": jupyter_connect}

_instances: dict = {}
_instances_lock = threading.Lock()


def create_backend(model_id: str, **options: Any) -> Backend:
    """The (not yet loaded) backend for `model_id`; raises for ids it cannot serve."""
    if not isinstance(model_id, str):
        raise TypeError(f"a model id must be a str, got {type(model_id).__name__}; "
                        f"accepted forms: {ACCEPTED_FORMS}")
    if "endpoint" in options:
        return _endpoint_backend(model_id, options)
    provider, slash, name = model_id.partition("/")
    if provider == "openai" and slash:
        from .backends.openai import OpenAIBackend

        return OpenAIBackend(model_id, name, **options)
    backend_name, _, target = model_id.partition(":")
    if backend_name == "local" and target:
        return _local_backend(model_id, target, options)
    if backend_name == "llama.cpp" and target:
        return _llamacpp_backend(model_id, target, options)
    hint = f" (did you mean 'local:{model_id}'?)" if ":" not in model_id else ""
    raise ValueError(f"unknown model id {model_id!r}{hint}; accepted forms: {ACCEPTED_FORMS}")


def register_endpoint(name: str, connect: Callable[[str], dict]) -> None:
    """Make `endpoint=name` resolve through `connect(model_id)`, which returns where the
    model is served: {"base_url", "name", "api_key"} (called once, when first used)."""
    _named_endpoints[name] = connect


def _endpoint_backend(model_id: str, options: dict) -> Backend:
    """`model("NAME", endpoint="127.0.0.1:8080")`: NAME served at that endpoint."""
    import os

    from .backends.openai import OpenAIBackend

    options = dict(options)
    endpoint = options.pop("endpoint")
    if "base_url" in options:
        raise ValueError("pass either endpoint= or base_url=, not both")
    connect = _named_endpoints.get(endpoint) if isinstance(endpoint, str) else None
    if connect is not None:  # e.g. "jupyter": a server the Jupyter extension starts
        return OpenAIBackend(model_id, model_id, connect=lambda: connect(model_id), **options)
    base_url = endpoint_url(endpoint)
    name = model_id[len("openai/"):] if model_id.startswith("openai/") else model_id
    if "api_key" not in options:
        options["api_key"] = os.environ.get(API_KEY_ENV)
    return OpenAIBackend(model_id, name, base_url=base_url, key_env=API_KEY_ENV, **options)


def _local_backend(model_id: str, target: str, options: dict) -> Backend:
    from .backends.transformers import TransformersBackend
    from .embedded import EMBEDDED_NAME, embedded_folder

    TransformersBackend.check_options(model_id, options)
    if target == EMBEDDED_NAME:
        return TransformersBackend(model_id, lambda: str(embedded_folder()), **options)
    path = Path(target).expanduser()
    if path.is_dir():
        return TransformersBackend(model_id, lambda: str(path), **options)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model {model_id!r}: no GGUF file at {str(path)!r}")
        from .conversion import converted_folder, gguf_key

        key = gguf_key(path)
        return TransformersBackend(
            model_id, lambda: str(converted_folder(lambda: path, key, path.stem)), **options)
    if target.startswith(("/", ".", "~")) or path.exists():
        raise FileNotFoundError(f"model {model_id!r}: {str(path)!r} is not a model folder "
                                f"or .gguf file; accepted forms: {ACCEPTED_FORMS}")
    return TransformersBackend(model_id, lambda: target, **options)  # a hub id, cached


def _llamacpp_backend(model_id: str, target: str, options: dict) -> Backend:
    from .backends.llamacpp import LlamaCppBackend
    from .embedded import EMBEDDED_NAME, embedded_gguf

    LlamaCppBackend.check_options(model_id, options)
    if target == EMBEDDED_NAME:
        return LlamaCppBackend(model_id, embedded_gguf, **options)
    path = Path(target).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ValueError(f"model {model_id!r}: llama.cpp runs GGUF files; pass "
                         f"'llama.cpp:<file>.gguf' or 'llama.cpp:{EMBEDDED_NAME}'")
    if not path.is_file():
        raise FileNotFoundError(f"model {model_id!r}: no GGUF file at {str(path)!r}")
    return LlamaCppBackend(model_id, lambda: path, **options)


def shared_instance(model_id: str, options: dict, create) -> Any:
    """The one instance for (model_id, options), made by `create()` the first time."""
    try:
        key = (model_id, frozenset(options.items()))
        hash(key)
    except TypeError:
        unhashable = sorted(k for k, v in options.items() if not _hashable(v))
        raise TypeError("model options must be hashable values (str, int, float, bool, "
                        f"None, tuple); not hashable: {', '.join(unhashable)}") from None
    with _instances_lock:
        if key not in _instances:
            _instances[key] = create()
        return _instances[key]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
