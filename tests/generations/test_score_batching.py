"""Concurrent `score` calls share forward passes and give the numbers they get alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import lmql_nb
from lmql_nb.backends.transformers import torch_model
from lmql_nb.backends.transformers.torch_model import TorchModel

import reference

TEXT = " capital of France is Paris. The capital of Germany is Berlin."
PROMPTS = ["The", "Once upon a time there was", "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42",
           "The capital of Germany is Berlin. The capital of France is"]


def _values_of_1_to_9_tokens(tokenizer) -> list[str]:
    """The shortest prefix of TEXT of each token count from 1 to 9."""
    of_length: dict[int, str] = {}
    for end in range(1, len(TEXT) + 1):
        of_length.setdefault(len(tokenizer.encode(TEXT[:end], add_special_tokens=False)),
                             TEXT[:end])
    return [of_length[k] for k in range(1, 10)]


def _model(path):
    """The model, with a batch window wide enough that a test's calls always meet."""
    llm = lmql_nb.model(f"local:{path}")
    llm.score_sync("warm", [" up"], cache=False)
    llm.backend._worker._batch_window = 0.3
    return llm


def _record_chunks(monkeypatch) -> list:
    """The set of calls in each `score_rows` chunk."""
    chunks = []
    original = TorchModel.score_rows

    def score_rows(self, rows, **options):
        chunks.append({row.call for row in rows})
        return original(self, rows, **options)

    monkeypatch.setattr(TorchModel, "score_rows", score_rows)
    return chunks


def test_batched_scores_equal_scores_alone(tiny_path, monkeypatch):
    llm = _model(tiny_path)
    _, tokenizer = reference.load(tiny_path)
    values = _values_of_1_to_9_tokens(tokenizer)
    calls = [(prompt, values[i % 3::2]) for i, prompt in enumerate(PROMPTS)]
    calls.append(("", [" France", "日本語 😀"]))  # scored from the start token
    alone = [llm.score_sync(prompt, vs, cache=False).scores() for prompt, vs in calls]
    chunks = _record_chunks(monkeypatch)

    async def together():
        return await asyncio.gather(*[llm.score(p, vs, cache=False) for p, vs in calls])

    batched = [r.scores() for r in asyncio.run(together())]
    assert max(len(chunk) for chunk in chunks) > 1  # calls shared forward passes
    for got, expected in zip(batched, alone):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # and both are what transformers computes for each (prompt, value) on its own
    for (prompt, vs), got in zip(calls, batched):
        expected = [reference.continuation_logprob(tiny_path, prompt, v) for v in vs]
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_300_values_beside_short_calls(tiny_gpt2_path, monkeypatch):
    """The long call runs in several memory-sized chunks; the short calls, whose prompts
    are shorter, finish first, and every number equals the call alone."""
    llm = _model(tiny_gpt2_path)
    many = [f" {i}" if i % 2 else f" {i} and {i + 1}" for i in range(300)]
    long_prompt = PROMPTS[3]
    short = [(p, [" France", " the river"]) for p in PROMPTS[:3]]
    alone_long = llm.score_sync(long_prompt, many, cache=False).scores()
    alone_short = [llm.score_sync(p, vs, cache=False).scores() for p, vs in short]
    # about 100 rows of a 50-token prompt per chunk (256 bytes of cache per token)
    monkeypatch.setattr(torch_model, "SCORE_CACHE_BYTES", 100 * 50 * 256)
    chunks = _record_chunks(monkeypatch)
    order = []

    async def call(index, prompt, values):
        result = await llm.score(prompt, values, cache=False)
        order.append(index)
        return result.scores()

    async def together():
        return await asyncio.gather(call("long", long_prompt, many),
                                    *[call(i, p, vs) for i, (p, vs) in enumerate(short)])

    got_long, *got_short = asyncio.run(together())
    assert len(chunks) > 2 and order[-1] == "long"
    np.testing.assert_allclose(got_long, alone_long, rtol=0, atol=1e-5)
    for got, expected in zip(got_short, alone_short):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("budget", [1, 10**9])
def test_one_pass_per_chunk_whatever_the_budget(tiny_gpt2_path, monkeypatch, budget):
    """A chunk never exceeds the logits budget unless a single row does."""
    llm = _model(tiny_gpt2_path)
    monkeypatch.setattr(torch_model, "MAX_LOGITS_PER_BATCH", budget)
    chunks = _record_chunks(monkeypatch)

    async def together():
        return await asyncio.gather(*[llm.score(p, [" a b c", " d"], cache=False)
                                      for p in PROMPTS])

    results = asyncio.run(together())
    assert len(chunks) == 1 if budget > 1 else len(chunks) > len(PROMPTS)
    for prompt, result in zip(PROMPTS, results):
        expected = [reference.continuation_logprob(tiny_gpt2_path, prompt, v)
                    for v in [" a b c", " d"]]
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
