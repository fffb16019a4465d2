"""The top-level Generations API: `model`, `generate`, `score`, the default model."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Optional, Union

from .core import aio
from .generations.llm import LLM, GenerateResult
from .tokenization.tokenizer import Tokenizer
from .backends.registry import create_backend, shared_instance
from .core.scoring import ScoringResult, ScoringTable

DEFAULT_MODEL_ENV = "LMQL_NB_DEFAULT_MODEL"

_default: Optional[LLM] = None
_default_lock = threading.Lock()


def model(model_id: str, **options: Any) -> LLM:
    """The `LLM` for `model_id` (one shared instance per id and options).

    Ids: "local:gemma-3-270m" (the embedded default), "local:<folder>", "local:<file>.gguf",
    "local:<hub id>" (from your own hub cache), "llama.cpp:gemma-3-270m" or
    "llama.cpp:<file>.gguf" (a GGUF run as it is by llama.cpp; needs the [llamacpp] extra),
    "openai/<model>" (OpenAI, Azure or any OpenAI-compatible server: `api_key=`,
    `base_url=`), or a served model's name with `endpoint="host:port"` (`python -m lmql_nb
    serve`, vLLM). Options go to the backend, e.g. `dtype="bfloat16"`, `threads=1`
    (llama.cpp: `n_ctx`, `threads`, `parallel`, `gpu_layers`). Nothing loads until the
    first call.
    """
    return shared_instance(model_id, options,
                           lambda: LLM(model_id, create_backend(model_id, **options)))


class LMQLTokenizer:
    """A model's tokenizer as LMQL's `lmql.tokenizer(...)` gives it: `t(text)` returns
    `{"input_ids": [...]}` (no special tokens added), plus `encode`, `decode`,
    `tokenize`."""

    def __init__(self, model_id: str, tokenizer: Tokenizer):
        self.model_identifier = model_id
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> dict[str, list[int]]:
        if not isinstance(text, str):
            raise TypeError(f"a tokenizer takes a str, got {type(text).__name__}")
        return {"input_ids": self.tokenizer.encode(text)}

    def encode(self, text: str) -> list[int]:
        """The token ids of `text` (no special tokens added)."""
        return self.tokenizer.encode(text)

    def decode(self, ids: Any) -> str:
        """The text of token ids `ids`."""
        return self.tokenizer.decode(list(ids))

    def tokenize(self, text: str) -> list[str]:
        """The tokens of `text`, as the vocabulary spells them."""
        return self.tokenizer.tokenize(text)

    def __repr__(self) -> str:
        return f"<LMQLTokenizer {self.model_identifier!r}>"


def tokenizer(model_id: str, **options: Any) -> LMQLTokenizer:
    """The tokenizer of model `model_id` (loads the model's tokenizer only where the
    backend can; see `model`)."""
    llm = model(model_id, **options)
    return LMQLTokenizer(model_id, llm.get_tokenizer())


def _as_llm(value: Union[str, LLM], name: str = "model") -> LLM:
    if isinstance(value, LLM):
        return value
    if isinstance(value, str):
        return model(value)
    raise TypeError(f"{name} must be an lmql_nb.LLM or a model id str, got {type(value).__name__}")


def set_default_model(model: Union[str, LLM]) -> None:
    """Use `model` (an `LLM` or an id) wherever no model is given, in this process."""
    global _default
    llm = _as_llm(model)
    with _default_lock:
        _default = llm


def get_default_model() -> LLM:
    """The default model: as set, else `$LMQL_NB_DEFAULT_MODEL`, else the embedded Gemma."""
    global _default
    with _default_lock:
        if _default is None:
            from .backends.embedded import EMBEDDED_ID

            _default = _as_llm(os.environ.get(DEFAULT_MODEL_ENV) or EMBEDDED_ID)
        return _default


def _resolve(value: Union[str, LLM, None]) -> LLM:
    return get_default_model() if value is None else _as_llm(value)


async def generate(prompt: str, max_tokens: Optional[int] = None,
                   model: Union[str, LLM, None] = None, **kwargs: Any) -> GenerateResult:
    """Complete `prompt` with `model` (default: the default model). See `LLM.generate`."""
    return await _resolve(model).generate(prompt, max_tokens, **kwargs)


def generate_sync(prompt: str, max_tokens: Optional[int] = None,
                  model: Union[str, LLM, None] = None, **kwargs: Any) -> GenerateResult:
    """Synchronous `generate`."""
    return aio.run_sync(generate, prompt, max_tokens, model, **kwargs)


async def score(prompt: str, values: Union[str, list[str]],
                model: Union[str, LLM, None] = None, **kwargs: Any) -> ScoringResult:
    """Score `values` as continuations of `prompt`. See `LLM.score`."""
    return await _resolve(model).score(prompt, values, **kwargs)


def score_sync(prompt: str, values: Union[str, list[str]],
               model: Union[str, LLM, None] = None, **kwargs: Any) -> ScoringResult:
    """Synchronous `score`."""
    return aio.run_sync(score, prompt, values, model, **kwargs)


async def score_many(prompts: Iterable[str], values: Any, model: Union[str, LLM, None] = None,
                     **kwargs: Any) -> ScoringTable:
    """Score a dataset: each prompt against `values`. See `LLM.score_many`."""
    return await _resolve(model).score_many(prompts, values, **kwargs)


def score_many_sync(prompts: Iterable[str], values: Any, model: Union[str, LLM, None] = None,
                    **kwargs: Any) -> ScoringTable:
    """Synchronous `score_many` (an interrupt returns the rows finished so far). See
    `LLM.score_many_sync`."""
    return _resolve(model).score_many_sync(prompts, values, **kwargs)
