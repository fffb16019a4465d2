"""The llama.cpp backend: a GGUF file run in this process by llama.cpp, as it is.

No conversion and no separate tokenizer: the GGUF's quantised weights and its own
vocabulary are used directly, through `llama-cpp-python`. The engine on top is the
same as for transformers (see `InProcessBackend`), so decoders, constraints, scoring,
caching and serving behave alike; the numbers are the quantised model's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from .local import InProcessBackend, check_threads, default_threads

DEFAULT_CONTEXT = 8192


class LlamaCppBackend(InProcessBackend):
    """A GGUF model served by llama.cpp from a worker thread.

    Options:
        n_ctx: key/value cache size in tokens, shared by all sequences decoded at once
            (cached prompts' cells are shared with the rows that continue them). Default:
            the model's training context, at most 8192.
        threads: llama.cpp's thread count. None (the default) leaves one core free.
        parallel: how many sequences (rows, beams, scored values) may be decoded at
            once; default 64, at most 256.
        gpu_layers: layers to offload to a GPU (needs a GPU build of llama.cpp).
        batch_window: seconds the worker waits after a request for others to batch with.
        throughput: False (default): concurrent calls take turns within each decode
            step, so each call's numbers are what it gets alone. True: they share decode
            calls (prompts, values and generation steps of different calls together),
            faster, and each call's numbers then depend on what runs beside it (on the
            embedded model about 0.01 in a log-probability for decode steps, up to about
            0.2 for a prompt evaluated together with others; see `llama_model`).
    """

    kind = "llama.cpp"
    options = ("n_ctx", "threads", "parallel", "gpu_layers", "batch_window", "throughput")

    def __init__(self, model_id: str, locate: Callable[[], Path], n_ctx: Optional[int] = None,
                 threads: Optional[int] = None, parallel: int = 64, gpu_layers: int = 0,
                 batch_window: float = 0.005, throughput: bool = False):
        for name, value, low, high in (("n_ctx", n_ctx, 16, None), ("parallel", parallel, 2, 256),
                                       ("gpu_layers", gpu_layers, 0, None)):
            if value is None and name == "n_ctx":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low \
                    or (high is not None and value > high):
                bounds = f"in [{low}, {high}]" if high is not None else f"at least {low}"
                raise ValueError(f"{name} must be an int {bounds}; got {value!r}")
        if not isinstance(throughput, bool):
            raise TypeError(f"throughput must be True or False; got {throughput!r}")
        super().__init__(model_id, batch_window)
        self.throughput = throughput
        self._locate = locate
        self._path: Optional[Path] = None
        self.n_ctx = n_ctx
        self.threads = check_threads(threads)
        self.parallel = parallel
        self.gpu_layers = gpu_layers
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
        from ..engine.llama_model import load_gguf

        with self._lock:
            if self._llama_model is None:
                self._llama_model = load_gguf(self.path(), self.gpu_layers)
            return self._llama_model

    def get_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from ..engine.llama_model import llama_library
                from ..engine.llama_tokenizer import LlamaTokenizer

                self._tokenizer = LlamaTokenizer(llama_library(), self._weights())
            return self._tokenizer

    def _load_model(self) -> Any:
        from ..engine.llama_model import LlamaModel, llama_library

        weights = self._weights()
        trained = llama_library().llama_model_n_ctx_train(weights)
        context = self.n_ctx or min(trained, DEFAULT_CONTEXT) or DEFAULT_CONTEXT
        return LlamaModel(weights, context, self.threads or default_threads(), self.parallel,
                          self.throughput)

    def identity(self) -> str:
        """The GGUF file as result caches should know it: path, size, modification time
        (reading gigabytes to hash them would cost more than a cache hit saves)."""
        from ..conversion import gguf_key

        # throughput mode's numbers depend on the company a call had: cached apart
        return f"llama.cpp|{gguf_key(self.path())}" + ("|throughput" if self.throughput else "")
