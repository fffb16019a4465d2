"""The in-process backend: a transformers model on this machine (CPU or GPU via torch).

The model lives on one worker thread, which batches concurrent calls into shared
forward passes (see `lmql_nb.backends.engine`). Sources: a `save_pretrained` folder, a `.gguf`
file (converted once into the user cache), a hub id already in the user's own hub cache
(nothing is downloaded), or the embedded Gemma 3 270M.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

from .tokenizer import HFTokenizer
from ...core.validation import option
from ..engine.in_process import (InProcessBackend, InProcessOptions, default_max_rows,
                                 default_threads)

DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclasses.dataclass(frozen=True)
class TransformersOptions(InProcessOptions):
    """The options of `local:` models (`threads` is torch's intra-op count, process-wide)."""

    dtype: str = option("float32", "float32 reproduces transformers' reference numbers; "
                        "bfloat16 is about twice as fast on CPUs with bf16 support",
                        "choice", choices=DTYPES)
    device: str = option("cpu", "a torch device (\"cpu\", \"cuda\", ...)", "str")
    max_rows: Optional[int] = option(
        None, "sequences (n x prompts, beams) decoded at once; a call asking for more is a "
        "ValueError, concurrent calls beyond it wait their turn (None: what half the "
        "memory available at load time holds)", "int", minimum=1, optional=True)


def create(model_id: str, target: str, options: TransformersOptions) -> "TransformersBackend":
    """The backend for `local:<target>`: the embedded model, a `save_pretrained` folder, a
    GGUF file (converted once) or a hub id already in the local cache."""
    from ..embedded import EMBEDDED_NAME
    from .conversion import embedded_folder

    if target == EMBEDDED_NAME:
        backend = TransformersBackend(model_id, lambda: str(embedded_folder()), options)
        backend.embedded = True
        return backend
    path = Path(target).expanduser()
    if path.is_dir():
        return TransformersBackend(model_id, lambda: str(path), options)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model {model_id!r}: no GGUF file at {str(path)!r}")
        from ...core.paths import gguf_key
        from .conversion import converted_folder

        key = gguf_key(path)
        return TransformersBackend(
            model_id, lambda: str(converted_folder(lambda: path, key, path.stem)), options)
    if target.startswith(("/", ".", "~")) or path.exists():
        raise FileNotFoundError(f"model {model_id!r}: {str(path)!r} is not a model folder "
                                "or .gguf file")
    return TransformersBackend(model_id, lambda: target, options)  # a hub id, cached


class TransformersBackend(InProcessBackend):
    """A transformers causal LM served from a worker thread (options:
    `TransformersOptions`)."""

    kind = "transformers"

    def __init__(self, model_id: str, locate: Callable[[], str],
                 options: TransformersOptions = TransformersOptions()):
        super().__init__(model_id, options)
        self._locate = locate
        self._location: Optional[str] = None
        self.dtype = options.dtype
        self.device = options.device
        self.rows = options.max_rows
        self._tokenizer: Optional[HFTokenizer] = None

    def __repr__(self) -> str:
        return f"TransformersBackend({self.model_id!r}, dtype={self.dtype!r})"

    def location(self) -> str:
        """The folder (or hub id) the model loads from, converting a GGUF first if needed."""
        with self._lock:
            if self._location is None:
                self._location = self._locate()
            return self._location

    def get_tokenizer(self) -> HFTokenizer:
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer, GenerationConfig

                location = self.location()
                hf_tokenizer = _load_or_explain(AutoTokenizer.from_pretrained, self.model_id,
                                                location, local_files_only=True)
                try:
                    generation_config = GenerationConfig.from_pretrained(
                        location, local_files_only=True)
                    eos = generation_config.eos_token_id
                except OSError:
                    eos = None
                eos_ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
                self._tokenizer = HFTokenizer(hf_tokenizer, eos_ids)
            return self._tokenizer

    def _load_model(self) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        from .torch_model import TorchModel

        tokenizer = self.get_tokenizer()
        torch.set_num_threads(self.threads or default_threads(torch.get_num_threads()))
        dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        model = _load_or_explain(AutoModelForCausalLM.from_pretrained, self.model_id,
                                 self.location(), dtype=dtype, local_files_only=True)
        model.to(self.device).eval()
        pad_id = tokenizer.hf.pad_token_id
        loaded = TorchModel(model, _context_length(model.config, tokenizer),
                            pad_id if pad_id is not None else 0)
        loaded.max_rows = self.rows or default_max_rows(loaded.vocab_size)
        return loaded

    def identity(self) -> str:
        """The model's weights as result caches should know them: a fingerprint of the
        folder's files (names, sizes, modification times) and the dtype."""
        location = self.location()
        return f"transformers|{folder_fingerprint(location)}|{self.dtype}"


def folder_fingerprint(location: str) -> str:
    """A hash of a model folder's file names, sizes and modification times (cheap: it
    reads no weights); for a hub id, the id itself."""
    import hashlib

    folder = Path(location)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(location, local_files_only=True))
        except Exception:  # not in the local hub cache: loading will say so
            return f"hub:{location}"
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _context_length(config: Any, tokenizer: HFTokenizer) -> Optional[int]:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer.hf, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 10**8 else None


def _load_or_explain(load: Callable, model_id: str, location: str, **kwargs: Any) -> Any:
    """Call a transformers loader; turn "not found" into an error that says what to do.

    transformers' own progress bars stay off: loading runs on a thread, and in a
    notebook a bar would land in whichever cell runs at that moment.
    """
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load(location, **kwargs)
    except OSError as error:
        if Path(location).exists():
            raise
        raise FileNotFoundError(
            f"cannot load {model_id!r}: {location!r} is neither a model folder nor a model "
            "in your local Hugging Face cache. lmql_nb never downloads weights at run time; "
            "download the model yourself, or pass a folder saved with save_pretrained, or a "
            ".gguf file") from error
    except Exception as error:  # a folder with damaged files (safetensors, config, ...)
        if not Path(location).is_dir():
            raise
        raise ValueError(
            f"cannot load {model_id!r} from the folder {location!r}: "
            f"{type(error).__name__}: {str(error)[:300]}. Its files are damaged or "
            "incomplete: restore them, or, for a model lmql_nb converted into its cache, "
            "delete that folder and it is converted again") from error
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
