"""Model ids: what `lmql_nb.model(id)` accepts and which backend serves it.

One `LLM` instance is shared per id and options, so a notebook that calls
`lmql_nb.model("local:gemma-3-270m")` in many cells loads the model once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .backends.base import Backend

ACCEPTED_FORMS = (
    "'local:gemma-3-270m' (the embedded default model), "
    "'local:<folder>' (a transformers save_pretrained folder), "
    "'local:<file>.gguf' (a GGUF file), "
    "'local:<hub id>' (a model already in your local Hugging Face cache)"
)

_instances: dict = {}
_instances_lock = threading.Lock()


def create_backend(model_id: str, **options: Any) -> Backend:
    """The (not yet loaded) backend for `model_id`; raises for ids it cannot serve."""
    if not isinstance(model_id, str):
        raise TypeError(f"a model id must be a str, got {type(model_id).__name__}; "
                        f"accepted forms: {ACCEPTED_FORMS}")
    backend_name, _, target = model_id.partition(":")
    if backend_name == "local" and target:
        return _local_backend(model_id, target, options)
    hint = f" (did you mean 'local:{model_id}'?)" if ":" not in model_id else ""
    raise ValueError(f"unknown model id {model_id!r}{hint}; accepted forms: {ACCEPTED_FORMS}")


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


def shared_instance(model_id: str, options: dict, create) -> Any:
    """The one instance for (model_id, options), made by `create()` the first time."""
    try:
        key = (model_id, frozenset(options.items()))
        hash(key)
    except TypeError:
        raise TypeError("model options must be hashable values (str, int, float, bool, "
                        f"None); got {options!r}") from None
    with _instances_lock:
        if key not in _instances:
            _instances[key] = create()
        return _instances[key]
