"""The public API surface: ids, the default model, the tokenizer, and bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lmql_nb
from lmql_nb import api

import reference


def test_import_is_light():
    code = ("import sys, lmql_nb; heavy = [m for m in ('torch', 'transformers', 'openai', "
            "'IPython', 'anywidget', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_instance_per_id_and_options(tiny_gpt2_path):
    a = lmql_nb.model(f"local:{tiny_gpt2_path}")
    assert lmql_nb.model(f"local:{tiny_gpt2_path}") is a
    assert lmql_nb.model(f"local:{tiny_gpt2_path}", dtype="bfloat16") is not a
    assert repr(a) == f"lmql_nb.LLM('local:{tiny_gpt2_path}')"


def test_loading_is_lazy(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}", batch_window=0.001)
    assert llm.backend.context_length is None  # nothing loaded yet
    llm.generate_sync("a", max_tokens=1)
    assert llm.backend.context_length == 128


@pytest.mark.parametrize("model_id, error, message", [
    ("gpt2", ValueError, "did you mean 'local:gpt2'"),
    ("nonsense:thing", ValueError, "accepted forms"),
    ("local:/no/such/folder", FileNotFoundError, "not a model folder"),
    ("local:/no/such/model.gguf", FileNotFoundError, "no GGUF file"),
    (42, TypeError, "model id must be a str"),
])
def test_unknown_ids_are_clear_errors(model_id, error, message):
    with pytest.raises(error, match=message):
        lmql_nb.model(model_id)


def test_a_hub_id_missing_from_the_local_cache_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    llm = lmql_nb.model("local:someone/not-downloaded")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        llm.generate_sync("Hi", max_tokens=1)


def test_backend_options_are_checked():
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16"):
        lmql_nb.model("local:gemma-3-270m", dtype="int3")
    with pytest.raises(TypeError, match="model 'local:gemma-3-270m' got unknown option "
                                        "'colour'; accepted options are: batch_window, "
                                        "chat_template, device, dtype, max_rows, threads"):
        lmql_nb.model("local:gemma-3-270m", colour="red")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(max_tokens=-1), ValueError, "max_tokens must be an int >= 0 or None, got -1"),
    (dict(max_tokens="5"), TypeError, "max_tokens must be an int"),
    (dict(decoder="greedy"), ValueError,
     "decoder must be one of argmax, sample, beam, beam_sample, got 'greedy'"),
    (dict(decoder="sample", n=0), ValueError, "n must be an int >= 1, got 0"),
    (dict(n=2), ValueError, "needs a decoder that gives several sequences"),
    (dict(decoder="argmax", temperature=0.7), ValueError, "pass decoder='sample'"),
    (dict(decoder="sample", temperature=-1), ValueError,
     "temperature must be a number >= 0, got -1"),
    (dict(decoder="sample", top_p=1.5), ValueError,
     r"top_p must be a number in \(0, 1\] or None, got 1.5"),
    (dict(top_logprobs=50), ValueError, r"top_logprobs must be an int in \[0, 20\], got 50"),
    (dict(chunksize=4), TypeError,
     r"generate\(\) got unknown option 'chunksize'; accepted options are"),
    (dict(cache="no"), TypeError, "cache must be True or False"),
])
def test_bad_generate_options_fail_before_loading(kwargs, error, message, tmp_path):
    llm = lmql_nb.model(f"local:{tmp_path}")  # an empty folder: loading it would fail
    with pytest.raises(error, match=message):
        llm.generate_sync("Hi", **kwargs)


@pytest.mark.parametrize("prompt, values, error, message", [
    (None, ["a"], TypeError, "prompt must be a str, got NoneType"),
    ("p", [], ValueError, "values must not be empty"),
    ("p", ["a", 3], TypeError, r"values\[1\] must be a str"),
    ("p", ["a", ""], ValueError, r"values\[1\] is empty"),
    ("p", 7, TypeError, "values must be a str or a list of str"),
])
def test_bad_score_input_fails_before_loading(prompt, values, error, message, tmp_path):
    llm = lmql_nb.model(f"local:{tmp_path}")
    with pytest.raises(error, match=message):
        llm.score_sync(prompt, values)


def test_non_string_prompt(tiny_gpt2_path):
    with pytest.raises(TypeError, match=r"prompt must be a str or a conversation \(a list "
                                        r"of \{'role'.*got a list of str"):
        lmql_nb.model(f"local:{tiny_gpt2_path}").generate_sync(["a"])
    with pytest.raises(TypeError, match="prompt must be a str, got int"):
        lmql_nb.model(f"local:{tiny_gpt2_path}").generate_sync(3)


def test_prompt_longer_than_the_context(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(ValueError, match="more than the model's context of 128 tokens"):
        llm.generate_sync("word " * 300, max_tokens=1)
    with pytest.raises(ValueError, match="more than the model's context of 128 tokens"):
        llm.score_sync("word " * 300, [" a"])
    assert isinstance(llm.generate_sync("still works", max_tokens=2), str)


def test_max_tokens_beyond_the_context_stops_at_the_context(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    _, tokenizer = reference.load(tiny_gpt2_path)
    prompt = "word"
    while len(reference.prompt_ids(tokenizer, prompt + " word")) < 120:
        prompt += " word"
    room = 128 - len(reference.prompt_ids(tokenizer, prompt))
    generation = llm.generate_sync(prompt, max_tokens=50, return_details=True, cache=False)
    assert len(generation.tokens) <= room < 50
    assert generation.finish_reason in ("context", "stop")


def test_default_model(tiny_gpt2_path, tiny_llama_path, monkeypatch):
    monkeypatch.setattr(api, "_default", None)
    monkeypatch.setenv("LMQL_NB_DEFAULT_MODEL", f"local:{tiny_gpt2_path}")
    assert lmql_nb.get_default_model() is lmql_nb.model(f"local:{tiny_gpt2_path}")
    expected = lmql_nb.model(f"local:{tiny_gpt2_path}").generate_sync("Once", max_tokens=4)
    assert lmql_nb.generate_sync("Once", max_tokens=4) == expected

    llama = lmql_nb.model(f"local:{tiny_llama_path}")
    lmql_nb.set_default_model(llama)
    assert lmql_nb.get_default_model() is llama
    assert lmql_nb.score_sync("Once", [" upon"]).model_identifier == f"local:{tiny_llama_path}"
    lmql_nb.set_default_model(f"local:{tiny_gpt2_path}")
    assert lmql_nb.get_default_model() is lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(TypeError, match="must be an lmql_nb.LLM or a model id str"):
        lmql_nb.set_default_model(3.5)


def test_the_embedded_model_is_the_default_without_configuration(monkeypatch):
    monkeypatch.setattr(api, "_default", None)
    monkeypatch.delenv("LMQL_NB_DEFAULT_MODEL", raising=False)
    assert lmql_nb.get_default_model().model_identifier == "local:gemma-3-270m"


def test_top_level_functions_take_a_model(tiny_gpt2_path):
    model_id = f"local:{tiny_gpt2_path}"
    llm = lmql_nb.model(model_id)
    expected = llm.generate_sync("Once", max_tokens=4)
    assert lmql_nb.generate_sync("Once", 4, model=model_id) == expected
    assert lmql_nb.generate_sync("Once", max_tokens=4, model=llm) == expected
    assert lmql_nb.score_sync("Once", " upon", model=llm).scores().tolist() == \
        llm.score_sync("Once", " upon").scores().tolist()


def test_tokenizer(tiny_llama_path):
    tokenizer = lmql_nb.model(f"local:{tiny_llama_path}").get_tokenizer()
    _, hf = reference.load(tiny_llama_path)
    text = "Zürich café 😀"
    assert tokenizer.encode(text) == hf.encode(text, add_special_tokens=False)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.tokenize(text) == hf.tokenize(text)
    assert tokenizer.vocab_size == len(hf)
    assert tokenizer.bos_token_id == hf.bos_token_id
    assert tokenizer.eos_token_id == hf.eos_token_id


def test_cache_returns_the_same_result_and_can_be_bypassed(tiny_gpt2_path, monkeypatch):
    from lmql_nb.generations import result_cache

    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    result_cache.results.clear()
    first = llm.generate_sync("Cached", max_tokens=5)
    calls = []
    original = llm.backend.generate

    async def counting(*args, **kwargs):
        calls.append(args)
        return await original(*args, **kwargs)

    monkeypatch.setattr(llm.backend, "generate", counting)
    assert llm.generate_sync("Cached", max_tokens=5) == first
    assert calls == []
    assert llm.generate_sync("Cached", max_tokens=5, cache=False) == first
    assert len(calls) == 1
    llm.generate_sync("Cached", max_tokens=5, decoder="sample")  # unseeded: never cached
    llm.generate_sync("Cached", max_tokens=5, decoder="sample")
    assert len(calls) == 3
