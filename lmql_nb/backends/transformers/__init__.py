"""The `local:` backend: a transformers model in this process (its torch model, tokenizer
and the GGUF conversion)."""

from ..base import Registration
from ..embedded import EMBEDDED_NAME
from .backend import TransformersBackend, TransformersOptions, create

REGISTRATION = Registration(
    "local:", create, TransformersOptions,
    ((f"local:{EMBEDDED_NAME}", "the embedded default model"),
     ("local:<folder>", "a transformers save_pretrained folder"),
     ("local:<file>.gguf", "a GGUF file"),
     ("local:<hub id>", "a model already in your local Hugging Face cache")))

__all__ = ["REGISTRATION", "TransformersBackend", "TransformersOptions", "create"]
