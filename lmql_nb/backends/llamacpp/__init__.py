"""The `llama.cpp:` backend: a GGUF file run by llama.cpp in this process (its model and
tokenizer over llama-cpp-python's C API)."""

from ..base import Registration
from ..embedded import EMBEDDED_NAME
from .backend import LlamaCppBackend, LlamaCppOptions, create

REGISTRATION = Registration(
    "llama.cpp:", create, LlamaCppOptions,
    ((f"llama.cpp:{EMBEDDED_NAME}", "the embedded GGUF run by llama.cpp as it is"),
     ("llama.cpp:<file>.gguf", "a GGUF file run by llama.cpp")))

__all__ = ["REGISTRATION", "LlamaCppBackend", "LlamaCppOptions", "create"]
