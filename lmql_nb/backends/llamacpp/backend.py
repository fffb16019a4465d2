"""The llama.cpp backend: a GGUF file run in this process by llama.cpp, as it is.

No conversion and no separate tokenizer: the GGUF's quantised weights and its own
vocabulary are used directly, through `llama-cpp-python`. The engine on top is the
same as for transformers (see `InProcessBackend`), so decoders, constraints, scoring,
caching and serving behave alike; the numbers are the quantised model's own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

from ...core.validation import option
from ..engine.in_process import InProcessBackend, InProcessOptions, default_threads

DEFAULT_CONTEXT = 8192


@dataclasses.dataclass(frozen=True)
class LlamaCppOptions(InProcessOptions):
    """The options of `llama.cpp:` models."""

    n_ctx: Optional[int] = option(
        None, "key/value cache size in tokens, shared by all sequences decoded at once "
        "(None: the model's training context, at most 8192)", "int", minimum=16,
        optional=True)
    parallel: int = option(64, "sequences (rows, beams, scored values) decoded at once",
                           "int", minimum=2, maximum=256)
    gpu_layers: int = option(0, "layers to offload to a GPU (needs a GPU build of "
                             "llama.cpp)", "int", minimum=0)
    # on the embedded model about 0.01 in a log-probability for decode steps, up to
    # about 0.4 for a prompt evaluated together with others (see `llama_model`)
    # measured by benchmarks/bench_flash_attention.py on the embedded model: on, scores
    # lie as close to the float32 reference after a short prompt and closer after a long
    # one (0.11 against 0.19 on average), at the same speed or slightly faster
    flash_attn: bool = option(
        True, "llama.cpp's flash attention kernels (True: closer to the float32 reference "
        "on the embedded model and no slower; False: llama.cpp's other attention path)",
        "bool")
    throughput: bool = option(
        False, "True: concurrent calls share decode calls (faster; each call's numbers "
        "then depend on what runs beside it); False: they take turns within each step, "
        "so each call's numbers are what it gets alone", "bool")


def create(model_id: str, target: str, options: LlamaCppOptions) -> "LlamaCppBackend":
    """The backend for `llama.cpp:<target>`: the embedded GGUF or a GGUF file."""
    from ..embedded import EMBEDDED_NAME, embedded_gguf

    if target == EMBEDDED_NAME:
        backend = LlamaCppBackend(model_id, embedded_gguf, options)
        backend.embedded = True
        return backend
    path = Path(target).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ValueError(f"model {model_id!r}: llama.cpp runs GGUF files; pass "
                         f"'llama.cpp:<file>.gguf' or 'llama.cpp:{EMBEDDED_NAME}'")
    if not path.is_file():
        raise FileNotFoundError(f"model {model_id!r}: no GGUF file at {str(path)!r}")
    return LlamaCppBackend(model_id, lambda: path, options)


class LlamaCppBackend(InProcessBackend):
    """A GGUF model served by llama.cpp from a worker thread (options: `LlamaCppOptions`;
    `threads` is llama.cpp's thread count)."""

    kind = "llama.cpp"
    rows_option = "parallel"
    continuation_changes_numbers = True  # split rounding: see `lmql_nb.backends.llamacpp.model`

    def __init__(self, model_id: str, locate: Callable[[], Path],
                 options: LlamaCppOptions = LlamaCppOptions()):
        super().__init__(model_id, options)
        self.throughput = options.throughput
        self.flash_attn = options.flash_attn
        self._locate = locate
        self._path: Optional[Path] = None
        self.n_ctx = options.n_ctx
        self.parallel = options.parallel
        self.gpu_layers = options.gpu_layers
        self._llama_model: Any = None
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.model_id!r})"

    def path(self) -> Path:
        """The GGUF file."""
        with self._lock:
            if self._path is None:
                self._path = Path(self._locate())
            return self._path

    def _weights(self) -> Any:
        """llama.cpp's model (weights and vocabulary), loaded once."""
        from .model import load_gguf

        with self._lock:
            if self._llama_model is None:
                self._llama_model = load_gguf(self.path(), self.gpu_layers)
            return self._llama_model

    def get_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from .model import llama_library
                from .tokenizer import LlamaTokenizer

                self._tokenizer = LlamaTokenizer(llama_library(), self._weights())
            return self._tokenizer

    def _load_model(self) -> Any:
        from .model import LlamaModel, llama_library

        weights = self._weights()
        trained = llama_library().llama_model_n_ctx_train(weights)
        context = self.n_ctx or min(trained, DEFAULT_CONTEXT) or DEFAULT_CONTEXT
        return LlamaModel(weights, context, self.threads or default_threads(), self.parallel,
                          self.throughput, self.flash_attn)

    def identity(self) -> str:
        """The GGUF file as result caches should know it: path, size, modification time
        (reading gigabytes to hash them would cost more than a cache hit saves)."""
        from ...core.paths import gguf_key

        # throughput mode's numbers depend on the company a call had: cached apart
        # flash attention changes the numbers too
        return (f"llama.cpp|{gguf_key(self.path())}" + ("|throughput" if self.throughput else "")
                + ("|flash" if self.flash_attn else ""))
