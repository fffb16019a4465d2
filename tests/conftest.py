"""Shared fixtures: tiny models the tests build themselves, and the embedded Gemma.

Tiny models have random weights and a tokenizer trained here on a small corpus; they are
saved with `save_pretrained` and loaded through `lmql_nb.model("local:<folder>")`, the
path a user takes. Their weights are drawn with a large initialiser range so that their
next-token distributions are peaked: argmax comparisons are then not decided by float
noise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CORPUS = [
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "Once upon a time there was a small town with a quiet river.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 123 2024.",
    "Ünïcödé, 日本語, emoji 😀🎉, and ünïcode again: café, naïve, Zürich.",
    '{"name": "Ada", "age": 36, "tags": ["math", "code"]}',
    "def f(x):\n    return x * 2\n\nprint(f(21))",
] * 4


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests write their converted models and caches to a folder of their own, except
    the embedded model's conversion, which is kept between runs (see `gemma`)."""
    os.environ.setdefault("LMQL_NB_CACHE_DIR", str(tmp_path_factory.mktemp("lmql_nb_cache")))
    yield


def _train_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "gpt2":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(CORPUS, trainer)
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>",
                                       eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    # SentencePiece style, as Llama and Gemma: "▁" for spaces, byte tokens (ordinary
    # vocabulary, not special tokens) for characters the merges do not cover
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=600,
                                                            special_tokens=specials))
    state = json.loads(trained.to_str())["model"]
    vocab = dict(state["vocab"])
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                                     byte_fallback=True))
    tokenizer.add_special_tokens(specials)
    tokenizer.pre_tokenizer = trained.pre_tokenizer
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                           decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    from tokenizers.processors import TemplateProcessing

    tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def build_tiny_model(folder: Path, kind: str = "gpt2", seed: int = 0) -> Path:
    """Save a tiny random model of `kind` ("gpt2" or "llama") with its tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer(kind)
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, initializer_range=0.5)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                             max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, initializer_range=0.5)
        model = LlamaForCausalLM(config)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_path(tmp_path_factory) -> Path:
    """A tiny GPT-2 (byte-level BPE, no BOS added) saved as a transformers folder."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory) -> Path:
    """A tiny Llama (SentencePiece-style BPE with byte fallback, BOS added)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(params=["gpt2", "llama"])
def tiny_path(request, tiny_gpt2_path, tiny_llama_path) -> Path:
    """Each tiny model in turn."""
    return tiny_gpt2_path if request.param == "gpt2" else tiny_llama_path


@pytest.fixture(scope="session")
def gemma():
    """The embedded Gemma 3 270M through its public id.

    Its converted folder lives in the real user cache (not the tests' own), so that it is
    converted once per machine, not once per test run.
    """
    import lmql_nb
    from lmql_nb.core import paths

    saved = os.environ.pop(paths.CACHE_ENV, None)
    try:
        llm = lmql_nb.model("local:gemma-3-270m")
        llm.backend.location()  # converts on the first run on this machine
    finally:
        if saved is not None:
            os.environ[paths.CACHE_ENV] = saved
    return llm


# Tiers. `bash scripts/test.sh --fast` (the edit-test loop) deselects the markers below,
# which tests get from where they are and what they do, so a new test needs no marker:
# browser (tests/browser: Chromium), llamacpp (files named *llamacpp*: the compiled
# llama.cpp), server (real server processes: tests/server and the server fixtures),
# kernel (real Jupyter kernels), subprocess (a new Python process, which loads torch and
# a model: seconds each), vllm (tests/vllm: a real vLLM server, its CPU build in a virtual
# environment of its own) and gemma (the embedded model, marked by hand).
SERVER_FIXTURES = {"gpt2_server", "llama_server", "server_process", "fault_proxy"}
KERNEL_MODULES = {"test_magics_kernel.py", "test_interrupt_and_autoload.py",
                  "test_query_interrupt_kernel.py"}
INSTALL_MODULES = {"test_first_hour.py"}


def _starts_python(item) -> bool:
    """True if the test (or a helper of its module it calls) runs `sys.executable`."""
    import inspect

    def source(obj) -> str:
        try:
            return inspect.getsource(obj)
        except (OSError, TypeError):
            return ""

    text = source(item.function)
    if "sys.executable" in text:
        return True
    module = item.module
    return any(callable(obj) and getattr(obj, "__module__", None) == module.__name__
               and f"{name}(" in text and "sys.executable" in source(obj)
               for name, obj in vars(module).items())


def pytest_collection_modifyitems(config, items):
    # nbval collects notebook cells too: they have no fixtures
    for item in items:
        path = Path(str(item.fspath))
        if "browser" in path.parts:
            item.add_marker(pytest.mark.browser)
        if "vllm" in path.parts:  # a real vLLM server on the embedded Gemma
            item.add_marker(pytest.mark.vllm)
            item.add_marker(pytest.mark.gemma)
        if "llamacpp" in path.name:
            item.add_marker(pytest.mark.llamacpp)
        if "server" in path.parent.name or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)
        if path.name in KERNEL_MODULES or "kernel" in path.stem:
            item.add_marker(pytest.mark.kernel)
        if path.name in INSTALL_MODULES:  # new virtual environments: minutes
            item.add_marker(pytest.mark.subprocess)
        if isinstance(item, pytest.Function) and _starts_python(item):
            item.add_marker(pytest.mark.subprocess)


# real servers and a fault proxy, shared by tests/server and tests/backends
from servers import (fault_proxy, gpt2_local, gpt2_server, llama_local,  # noqa: E402,F401
                     llama_server, long_gpt2_path, server_process)
# a tiny chat model (ChatML template and turn tokens), shared by the chat tests
from chat_models import chat_path  # noqa: E402,F401


@pytest.fixture
def settings_seen(monkeypatch):
    """The `Settings` each query run resolves, in order (`QueryFunction._settings`
    wrapped, not replaced)."""
    from lmql_nb.query import functions

    seen: list = []
    original = functions.QueryFunction._settings

    def recording(self, *args, **kwargs):
        settings = original(self, *args, **kwargs)
        seen.append(settings)
        return settings

    monkeypatch.setattr(functions.QueryFunction, "_settings", recording)
    return seen
