"""Converting a GGUF file once into a plain transformers folder that loads in seconds.

transformers reads GGUF by de-quantising every tensor and rebuilding the vocabulary
(about 45 s for Gemma 3 270M); a model loaded that way refuses `save_pretrained`. The
conversion drops the GGUF quantiser and saves float32 weights and the tokenizer into the
user cache, through a temporary folder and a rename, with a marker file written last.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

from .paths import atomic_directory, cache_dir
from .progress import stage

MARKER = "lmql_nb-converted.json"


def gguf_key(path: Path) -> str:
    """A cache key for a GGUF file: its resolved path, size and modification time."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def converted_folder(gguf_source: Callable[[], Path], key: str, label: str) -> Path:
    """The converted folder for a GGUF file, converting it first if needed.

    `gguf_source` gives the GGUF file's path; it is called only when a conversion runs.
    """
    target = cache_dir("models") / f"{label}-{key}"
    if (target / MARKER).is_file():
        return target
    if target.exists():  # no marker: not ours to trust, rebuild
        shutil.rmtree(target, ignore_errors=True)
    with atomic_directory(target) as folder:
        _convert(gguf_source(), folder, label)
    return target


def _convert(gguf_path: Path, folder: Path, label: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with stage(f"converting {label} from GGUF (once; later loads take seconds)"):
        with stage("reading the tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent),
                                                      gguf_file=gguf_path.name)
        with stage("de-quantising the weights"):
            model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                         gguf_file=gguf_path.name)
        model.hf_quantizer = None  # GGUF-loaded models refuse save_pretrained otherwise
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with stage("saving the converted model"):
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        (folder / MARKER).write_text(json.dumps({"source": str(gguf_path)}))
