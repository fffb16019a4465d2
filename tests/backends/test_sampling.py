"""Sampling draws from the distribution it promises: the model's, after temperature,
top-k and top-p. Expected probabilities are computed independently (plain Python over
the logits, or transformers' own forward pass), and frequencies of many draws must match
them within a few standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmql_nb
from lmql_nb.backends.engine.sampling import filter_logits, sample, seeded_generator

import reference

LOGITS = [2.0, 1.5, 1.0, 0.5, 0.0, -1.0, -3.0, float("-inf")]


def expected(logits: list[float], temperature: float, top_k=None, top_p=None) -> list[float]:
    """The distribution a sampler should draw from, written out by hand."""
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    kept = order[:top_k] if top_k else order
    weights = {i: math.exp(logits[i] / temperature) for i in kept
               if logits[i] != float("-inf")}
    if top_p is not None:
        total, mass, nucleus = sum(weights.values()), 0.0, {}
        for i in kept:  # most likely first, until the tokens before reach top_p
            if i not in weights or mass >= top_p:
                break
            nucleus[i] = weights[i]
            mass += weights[i] / total
        weights = nucleus
    total = sum(weights.values())
    return [weights.get(i, 0.0) / total for i in range(len(logits))]


def frequencies(draws: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(draws, minlength=size) / len(draws)


def assert_matches(observed: np.ndarray, probabilities: list[float], draws: int) -> None:
    for token, (seen, p) in enumerate(zip(observed, probabilities)):
        if p == 0:
            assert seen == 0, f"token {token} has probability 0 but was drawn"
        else:
            sigma = math.sqrt(p * (1 - p) / draws)
            assert abs(seen - p) < 5 * sigma + 1e-9, (token, seen, p)


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, None, None), (0.5, None, None), (2.0, None, None), (1.0, 3, None),
    (1.0, None, 0.6), (1.0, None, 0.95), (0.7, 4, 0.8), (1.0, 1, None)])
def test_draws_follow_the_filtered_distribution(temperature, top_k, top_p):
    draws = 40_000
    logits = np.tile(np.array(LOGITS, dtype=np.float32), (draws, 1))
    chosen = sample(logits, temperature, top_k, top_p, seeded_generator(0))
    assert_matches(frequencies(chosen, len(LOGITS)), expected(LOGITS, temperature, top_k, top_p),
                   draws)


def test_filtering_leaves_its_input_alone_and_keeps_the_nucleus():
    logits = np.array([LOGITS], dtype=np.float32)
    before = logits.copy()
    filtered = filter_logits(logits, 1.0, None, 0.6)
    np.testing.assert_array_equal(logits, before)
    kept = [i for i, p in enumerate(expected(LOGITS, 1.0, top_p=0.6)) if p > 0]
    assert np.flatnonzero(np.isfinite(filtered[0])).tolist() == kept


def test_the_model_samples_its_own_distribution(tiny_gpt2_path):
    # one token, many rows: their frequencies against softmax(logits / T) of transformers'
    # own forward pass, restricted to its top 4
    prompt, temperature, draws = "Once upon a time", 0.5, 3000
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    generations = llm.generate_sync(prompt, max_tokens=1, decoder="sample", n=draws, top_k=4,
                                    temperature=temperature, seed=5, return_details=True,
                                    cache=False)
    _, tokenizer = reference.load(tiny_gpt2_path)
    ids = reference.prompt_ids(tokenizer, prompt)
    row = reference.token_logprobs(tiny_gpt2_path, ids + [0])[len(ids) - 1].tolist()
    probabilities = expected(row, temperature, top_k=4)
    chosen = np.array([g.tokens[0].token_id for g in generations if g.tokens])
    assert len(chosen) == draws  # the tiny model's end token is outside its top 4 here
    assert_matches(frequencies(chosen, len(row)), probabilities, draws)
    assert min(p for p in probabilities if p) > 0.05  # a real mix, not near-argmax


@pytest.mark.parametrize("spread", [0.5, 5.0, 40.0])  # flat, typical, one token far ahead
def test_top_alternatives_are_the_largest_entries_in_order(spread):
    from lmql_nb.backends.engine.sampling import top_ids

    rng = np.random.default_rng(1)
    row = (rng.standard_normal(262_144) * spread).astype(np.float32)
    row[7] = row.max() + spread  # with spread 40, the rest lie more than 10 nats behind
    for k in (1, 5, 20):
        assert top_ids(row, k).tolist() == np.argsort(-row, kind="stable")[:k].tolist()
