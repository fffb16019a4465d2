"""The backends that come with lmql_nb, registered as any other package's would be.

Each backend module holds its options class and a `create(model_id, name, options)`
factory; this list says which id prefix leads to which, and how its ids read in errors
and docs. A new built-in backend is one module plus one `register_backend` line here.
"""

from __future__ import annotations

from .embedded import EMBEDDED_NAME
from .endpoints import jupyter_connect
from .registry import register_backend, register_endpoint, set_endpoint_client
from . import openai
from .llamacpp import backend as llamacpp
from .transformers import backend as transformers


def register() -> None:
    """Register the built-in backends and named endpoints."""
    register_backend("local:", transformers.create, options=transformers.TransformersOptions,
                     forms=[(f"local:{EMBEDDED_NAME}", "the embedded default model"),
                            ("local:<folder>", "a transformers save_pretrained folder"),
                            ("local:<file>.gguf", "a GGUF file"),
                            ("local:<hub id>", "a model already in your local Hugging "
                                               "Face cache")])
    register_backend("llama.cpp:", llamacpp.create, options=llamacpp.LlamaCppOptions,
                     forms=[(f"llama.cpp:{EMBEDDED_NAME}", "the embedded GGUF run by "
                                                          "llama.cpp as it is"),
                            ("llama.cpp:<file>.gguf", "a GGUF file run by llama.cpp")])
    register_backend("openai/", openai.create, options=openai.OpenAIOptions,
                     forms=[("openai/<model>", "OpenAI, Azure OpenAI or an "
                                               "OpenAI-compatible server: options api_key, "
                                               "base_url, ...")])
    set_endpoint_client(openai.create_at_endpoint, openai.OpenAIOptions)
    register_endpoint("jupyter", jupyter_connect,
                      "a 'local:...' model served by the Jupyter server extension")
