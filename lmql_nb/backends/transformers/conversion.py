"""Converting a GGUF file once into a plain transformers folder that loads in seconds.

transformers reads GGUF by de-quantising every tensor and rebuilding the vocabulary
(about 45 s for Gemma 3 270M); a model loaded that way refuses `save_pretrained`. The
conversion drops the GGUF quantiser and saves float32 weights and the tokenizer into the
user cache, through a temporary folder and a rename, with a marker file written last.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Callable, Optional

from ...core.paths import atomic_directory, cache_dir, file_fingerprint, folder_fingerprints
from ...core.progress import stage

MARKER = "lmql_nb-converted.json"


def converted_folder(gguf_source: Callable[[], Path], key: str, label: str) -> Path:
    """The converted folder for a GGUF file, converting it first if needed.

    `gguf_source` gives the GGUF file's path; it is called only when a conversion runs.
    """
    target = cache_dir("models") / f"{label}-{key}"
    if (target / MARKER).is_file():
        damage = damaged(target)
        if damage is None:
            return target
        warnings.warn(f"the converted model in {str(target)!r} is damaged ({damage}); "
                      "converting it again", stacklevel=2)
    if target.exists():  # no marker, or damaged: not ours to trust, rebuild
        shutil.rmtree(target, ignore_errors=True)
        if target.exists():
            raise OSError(f"the damaged converted model {str(target)!r} cannot be removed; "
                          "delete that folder and try again")
    with atomic_directory(target) as folder:
        source = gguf_source()
        _convert(source, folder, label)
        # written last: sizes and end hashes of what was written, checked on every use
        (folder / MARKER).write_text(json.dumps(
            {"source": str(source), "files": folder_fingerprints(folder, (MARKER,))}))
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
        model.hf_quantizer = None  # type: ignore[assignment]  # else GGUF-loaded models refuse save_pretrained
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with stage("saving the converted model"):
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)


def damaged(folder: Path) -> Optional[str]:
    """What is wrong with a converted folder (None if nothing): a file that differs from
    the fingerprint its marker recorded, or (for markers that recorded none) a
    safetensors file shorter than its own header says."""
    try:
        recorded = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return "its completion marker is unreadable"
    for path in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(path)
        if problem:
            return f"{path.name} {problem}"
    if isinstance(recorded, dict):
        for name, fingerprint in recorded.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if file_fingerprint(path) != fingerprint:
                return f"{name} differs from the file written ({path.stat().st_size} bytes, " \
                       f"{fingerprint[0]} written)"
    return None


def _safetensors_problem(path: Path) -> Optional[str]:
    """Why a safetensors file cannot be complete (None if its size is what its header
    says): the header gives every tensor's byte range."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if length <= 0 or 8 + length > size:
                return "has no complete header"
            header = json.loads(file.read(length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"),
                  default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return "has an unreadable header"
    expected = 8 + length + end
    return None if size == expected else f"is {size} bytes, its header says {expected}"


def embedded_folder() -> Path:
    """The embedded model as a transformers folder (converted on first use)."""
    from ..embedded import EMBEDDED_NAME, embedded_gguf, embedded_key

    return converted_folder(embedded_gguf, embedded_key(), EMBEDDED_NAME)
