"""The memory of scoring long prompts is bounded (`lmql_nb.backends.transformers.projection`).

An echo of prompt log-probabilities needs the next-token distribution at every prompt
position; projected at once, that is a (positions x vocabulary) array, gigabytes for a
few thousand tokens of Gemma 3's vocabulary. The engine keeps the final hidden states
and projects a chunk of positions at a time within the logits budget
(`MAX_LOGITS_PER_BATCH`, `$LMQL_NB_MAX_LOGITS`). These tests check the bound (the
largest output of the vocabulary projection, and the peak memory of a real server) and
that the numbers stay those of transformers' own forward pass over the whole prompt.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

import lmql_nb
from lmql_nb.backends.protocol import token_id_backend
from lmql_nb.backends.transformers import torch_model
from lmql_nb.backends.transformers.projection import MAX_LOGITS_ENV, chunk_positions
from lmql_nb.server.bridge import ServedModel

import reference

pytestmark = pytest.mark.timeout(300)

WIDE_VOCAB = 1 << 16
SENTENCE = "The capital of France is Paris. Once upon a time there was a small town. "


@pytest.fixture(scope="module")
def wide_gpt2_path(tiny_gpt2_path: Path, tmp_path_factory) -> Path:
    """The tiny GPT-2's tokenizer with a random model of 2048 positions and a vocabulary
    of 65,536 (its tokenizer names the first ~400): an echo of 1500 tokens projects
    ~100M logits (375 MiB as float32) if it projects them at once. The rows past the
    tokenizer's tokens are zero (logit 0, below the best real tokens), so that the top
    alternatives are tokens with a text of their own."""
    import shutil

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("wide-gpt2")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_gpt2_path / name, folder / name)
    config = GPT2Config.from_pretrained(tiny_gpt2_path)
    named = config.vocab_size
    config.vocab_size, config.n_positions = WIDE_VOCAB, 2048
    config.initializer_range = 0.1  # logits of a few units: float32 sums stay exact to 1e-5
    torch.manual_seed(3)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.wte.weight[named:] = 0  # tied: the output rows too
    model.save_pretrained(folder)
    return folder


def _long_prompt(path: Path, tokens: int) -> list[int]:
    _, tokenizer = reference.load(path)
    ids = tokenizer.encode(SENTENCE * (tokens // 10))
    assert len(ids) >= tokens
    return ids[:tokens]


def _peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_a_long_echo_over_http_is_exact_and_its_memory_bounded(wide_gpt2_path, server_process,
                                                                monkeypatch):
    """`lmql_nb serve` with a logits budget of 80 MiB (chunks of 160 positions, 40 MiB
    of logits): an echo of 1500 tokens through the `openai` SDK, with and without top
    alternatives, equals transformers' forward pass over the prompt within 1e-4, and the
    server's peak memory grows by far less than the 375 MiB that the prompt's logits
    would take at once (750 MiB with their log-sum-exp).

    (Chunks below glibc's largest mmap threshold, 32 MiB, may stay in a worker
    thread's heap once freed and add up to the logits of the whole prompt in resident
    memory: the default budget's chunks are 128 MiB.)"""
    import openai
    import torch

    monkeypatch.setenv(MAX_LOGITS_ENV, str(2 * 160 * WIDE_VOCAB))
    ids = _long_prompt(wide_gpt2_path, 1500)
    model, _ = reference.load(wide_gpt2_path)
    with torch.inference_mode():  # in float64: float32's over 65,536 logits is off by 6e-5
        table = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    expected = [float(table[i - 1, ids[i]]) for i in range(1, len(ids))]
    server = server_process(f"local:{wide_gpt2_path}", "wide")
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key,
                               max_retries=0, timeout=240)

        def echo(top: int):
            return client.completions.create(model="wide", prompt=ids, max_tokens=0,
                                             echo=True, logprobs=top, temperature=0)

        echo(1)  # the model loaded and run once: the baseline
        pid = server.process.pid
        for top in (0, 3):
            base = _rss_mib(pid)
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts over
            logprobs = echo(top).choices[0].logprobs
            growth = _peak_mib(pid) - base
            assert logprobs.token_logprobs[0] is None
            np.testing.assert_allclose(logprobs.token_logprobs[1:], expected, rtol=0,
                                       atol=1e-4)
            if top:
                for i, alternatives in enumerate(logprobs.top_logprobs[1:], 1):
                    # keyed by text (tokens that decode alike collapse), the prompt's own
                    # token beside them where it is not among them
                    allowed = [*table[i - 1].topk(top).values.tolist(), expected[i - 1]]
                    assert max(alternatives.values()) == pytest.approx(allowed[0], abs=1e-4)
                    assert all(min(abs(value - a) for a in allowed) < 1e-4
                               for value in alternatives.values())
            assert growth < 150, f"the echo with logprobs={top} took {growth:.0f} MiB more"
    finally:
        server.stop()


@pytest.fixture
def projected(monkeypatch):
    """A small logits budget, and the shape of every output of the vocabulary projection
    (a forward hook on the model's output embeddings): `watch(llm)` starts recording."""
    outputs: list[tuple[int, ...]] = []
    hooks = []

    def watch(llm) -> list[tuple[int, ...]]:
        head = llm.backend._model.model.get_output_embeddings()
        hooks.append(head.register_forward_hook(
            lambda module, args, output: outputs.append(tuple(output.shape))))
        return outputs

    yield watch
    for hook in hooks:
        hook.remove()


def _largest(outputs: list[tuple[int, ...]]) -> int:
    return max(int(np.prod(shape)) for shape in outputs)


@pytest.mark.parametrize("top", [None, 3])
def test_an_echo_projects_no_more_than_the_budget(tiny_gpt2_path, projected, monkeypatch,
                                                  top):
    """Through the server's echo path in process (`ServedModel.prompt_logprobs`): a
    prompt of 100 tokens and two prompts sharing a part of it, with a budget of 16
    positions' logits: no output of the vocabulary projection holds more than half the
    budget (a chunk and its log-softmax fit in it), and every number equals
    transformers' forward pass over the prompt alone."""
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    served = ServedModel(token_id_backend(llm.backend, "tiny"), "tiny", "tiny")
    served.load()
    vocab = llm.backend._model.vocab_size
    budget = 16 * vocab
    monkeypatch.setattr(torch_model, "MAX_LOGITS_PER_BATCH", budget)
    ids = _long_prompt(tiny_gpt2_path, 100)
    prompts = [ids, ids[:60] + ids[70:90], ids[:60] + ids[10:30]]
    outputs = projected(llm)
    answer = asyncio.run(served.prompt_logprobs(prompts, top))
    assert sum(int(np.prod(s[:-1])) for s in outputs) >= 99  # every position projected
    assert _largest(outputs) <= budget // 2 == chunk_positions(budget, vocab) * vocab
    for prompt, scored in zip(prompts, answer):
        table = reference.token_logprobs(tiny_gpt2_path, prompt)
        assert scored[0] is None
        np.testing.assert_allclose([s.logprob for s in scored[1:]],
                                   [float(table[i - 1, prompt[i]])
                                    for i in range(1, len(prompt))], rtol=0, atol=1e-4)
        if top:
            for i, token in enumerate(scored[1:], 1):
                np.testing.assert_allclose([value for _, value in token.top],
                                           table[i - 1].topk(top).values.tolist(),
                                           rtol=0, atol=1e-4)
                assert token.rank == int((table[i - 1] > table[i - 1, prompt[i]]).sum()) + 1


def test_score_with_long_values_projects_no_more_than_the_budget(tiny_gpt2_path, projected,
                                                                 monkeypatch):
    """In-process `score` and `score_many` (values of 60 tokens, many prompts in one
    pass) with a budget of 8 positions' logits: no projection output beyond half of
    it, the scores those of transformers."""
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    llm.score_sync("warm", [" up"], cache=False)  # loads the model
    vocab = llm.backend._model.vocab_size
    monkeypatch.setattr(torch_model, "MAX_LOGITS_PER_BATCH", 8 * vocab)
    outputs = projected(llm)
    _, tokenizer = reference.load(tiny_gpt2_path)
    long_value = tokenizer.decode(_long_prompt(tiny_gpt2_path, 60))
    values = [" " + long_value, " a", " the river"]
    alone = llm.score_sync("Numbers:", values, cache=False)
    prompts = [f"Review {i}: the food was" for i in range(40)]
    many = llm.score_many_sync(prompts, [" great", " a quiet river in the town"],
                               cache=False)
    assert _largest(outputs) <= 4 * vocab
    expected = [reference.continuation_logprob(tiny_gpt2_path, "Numbers:", v) for v in values]
    np.testing.assert_allclose(alone.scores(), expected, rtol=0, atol=1e-4)
    for prompt, result in zip(prompts[:3], many):
        expected = [reference.continuation_logprob(tiny_gpt2_path, prompt, v)
                    for v in (" great", " a quiet river in the town")]
        np.testing.assert_allclose(result.scores(), expected, rtol=0, atol=1e-4)


def test_a_bad_budget_in_the_environment_names_the_variable(monkeypatch):
    from lmql_nb.backends.transformers.projection import max_logits_from_env

    for bad in ("lots", "0", "-5", "1.5"):
        monkeypatch.setenv(MAX_LOGITS_ENV, bad)
        with pytest.raises(ValueError, match=rf"\$LMQL_NB_MAX_LOGITS is '{re.escape(bad)}'"):
            max_logits_from_env()
    monkeypatch.setenv(MAX_LOGITS_ENV, "4096")
    assert max_logits_from_env() == 4096


@pytest.fixture(scope="module")
def capped_path(tmp_path_factory) -> Path:
    """A tiny Gemma 3 whose logits are soft-capped (`final_logit_softcapping`), as Gemma
    2's are: the forward pass changes them after the output projection."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from chat_models import _root_conftest  # `import conftest` may find a subfolder's

    tokenizer = _root_conftest()._train_tokenizer("llama")
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2,
                              num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                              final_logit_softcapping=3.0, initializer_range=0.5,
                              bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(4)
    folder = tmp_path_factory.mktemp("capped-gemma")
    Gemma3ForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("apart", [True, False])
def test_soft_capped_logits_and_a_projection_that_cannot_run_apart(capped_path, projected,
                                                                   monkeypatch, apart):
    """A soft-capped model is projected in chunks with its cap applied; a model whose
    logits the engine cannot reproduce from the output embeddings (here: the cap
    hidden from it) is found out on one token and gets its logits from its own forward
    pass, as before the bound. Both echo transformers' numbers."""
    llm = lmql_nb.model(f"local:{capped_path}")
    served = ServedModel(token_id_backend(llm.backend, "capped"), "capped", "capped")
    served.load()
    model = llm.backend._model
    if not apart:  # found out again on its next pass, put back after the test
        monkeypatch.setattr(model, "_softcap", None)
        monkeypatch.setattr(model, "_projects_apart", None)
    vocab = model.vocab_size
    monkeypatch.setattr(torch_model, "MAX_LOGITS_PER_BATCH", 8 * vocab)
    assert model._projection_applies() is apart  # on 8 tokens, before the watch
    outputs = projected(llm)
    ids = _long_prompt(capped_path, 100)
    scored = asyncio.run(served.prompt_logprobs([ids], 2))[0]
    assert model._projects_apart is apart
    assert (_largest(outputs) <= 4 * vocab) is apart
    table = reference.token_logprobs(capped_path, ids)
    assert float(table.max()) - float(table.min()) < 6.5  # the cap: logits within (-3, 3)
    np.testing.assert_allclose([s.logprob for s in scored[1:]],
                               [float(table[i - 1, ids[i]]) for i in range(1, len(ids))],
                               rtol=0, atol=1e-4)
