"""Generation on tiny models, checked against transformers used directly."""

from __future__ import annotations

import math

import pytest
import torch

import lmql_nb
from lmql_nb import Generation

import reference

PROMPTS = ["The capital of", "Once upon a time", "Numbers: 1 2", "", "日本"]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_argmax_equals_transformers_greedy(tiny_path, prompt):
    llm = lmql_nb.model(f"local:{tiny_path}")
    ours = llm.generate_sync(prompt, max_tokens=12, cache=False)
    assert isinstance(ours, str)
    assert ours == reference.greedy(tiny_path, prompt, 12)


def test_details_logprobs_equal_a_forward_pass(tiny_path):
    llm = lmql_nb.model(f"local:{tiny_path}")
    prompt = "Once upon a time"
    generation = llm.generate_sync(prompt, max_tokens=8, return_details=True, top_logprobs=4,
                                   cache=False)
    assert isinstance(generation, Generation)
    _, tokenizer = reference.load(tiny_path)
    ids = reference.prompt_ids(tokenizer, prompt)
    full = ids + [t.token_id for t in generation.tokens]
    logprobs = reference.token_logprobs(tiny_path, full)
    for i, token in enumerate(generation.tokens):
        row = logprobs[len(ids) + i - 1]
        assert token.logprob == pytest.approx(float(row[token.token_id]), abs=1e-4)
        assert token.rank == 1  # argmax chose the most likely token
        top_values, top_ids = torch.topk(row, 4)
        assert [a.token_id for a in token.top] == top_ids.tolist()
        assert [a.logprob for a in token.top] == pytest.approx(top_values.tolist(), abs=1e-4)
        expected_entropy = float(-(row.exp() * row).sum())
        assert token.entropy == pytest.approx(expected_entropy, abs=1e-3)
    assert generation.text == "".join(t.text for t in generation.tokens)
    assert generation.logprob == pytest.approx(sum(t.logprob for t in generation.tokens))
    assert generation.finish_reason in ("length", "stop")


def test_sampling_is_reproducible_with_a_seed_and_varies_without(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    options = dict(max_tokens=10, decoder="sample", n=4, temperature=1.5, cache=False)
    first = llm.generate_sync("The capital of", seed=7, **options)
    second = llm.generate_sync("The capital of", seed=7, **options)
    assert isinstance(first, list) and len(first) == 4
    assert first == second
    unseeded = {tuple(llm.generate_sync("The capital of", **options)) for _ in range(3)}
    assert len(unseeded) > 1


def test_sampled_tokens_follow_top_k(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    generations = llm.generate_sync("Once upon", max_tokens=6, decoder="sample", n=8, top_k=2,
                                    seed=3, return_details=True, top_logprobs=2, cache=False)
    ranks = {t.rank for g in generations for t in g.tokens}
    assert ranks <= {1, 2}
    assert 2 in ranks  # sampling, not argmax


def test_temperature_zero_sampling_is_greedy(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    sampled = llm.generate_sync("The capital of", max_tokens=8, decoder="sample", temperature=0,
                                cache=False)
    assert sampled == reference.greedy(tiny_gpt2_path, "The capital of", 8)


@pytest.mark.parametrize("prompt", ["The capital of", "Once upon a time"])
def test_beam_equals_transformers_beam_search(tiny_path, prompt):
    llm = lmql_nb.model(f"local:{tiny_path}")
    ours = llm.generate_sync(prompt, max_tokens=6, decoder="beam", n=3, cache=False)
    assert ours == reference.beams(tiny_path, prompt, 6, 3)


def test_beam_results_are_ordered_by_normalised_score(tiny_llama_path):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    generations = llm.generate_sync("Once", max_tokens=5, decoder="beam", n=4,
                                    return_details=True, cache=False)
    assert len(generations) == 4
    assert len({tuple(t.token_id for t in g.tokens) for g in generations}) == 4
    scores = [g.logprob / (len(g.tokens) + (g.finish_reason == "stop")) for g in generations]
    assert scores == sorted(scores, reverse=True)


def test_max_tokens_none_runs_to_the_context_limit_and_keeps_the_text(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    generation = llm.generate_sync("The capital of", max_tokens=None, return_details=True,
                                   cache=False)
    _, tokenizer = reference.load(tiny_gpt2_path)
    prompt_length = len(reference.prompt_ids(tokenizer, "The capital of"))
    context = 128  # n_positions of the tiny GPT-2
    if generation.finish_reason == "stop":
        assert len(generation.tokens) < context - prompt_length
    else:
        assert generation.finish_reason == "context"
        assert len(generation.tokens) == context - prompt_length
    assert generation.text == reference.greedy(tiny_gpt2_path, "The capital of",
                                               context - prompt_length)


def test_max_tokens_zero_gives_empty_text(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    assert llm.generate_sync("Hi", max_tokens=0, cache=False) == ""


def test_special_tokens_never_appear_in_text(tiny_llama_path):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    _, tokenizer = reference.load(tiny_llama_path)
    texts = llm.generate_sync("", max_tokens=40, decoder="sample", n=6, seed=0, cache=False)
    for text in texts:
        for special in tokenizer.all_special_tokens:
            assert special not in text


def test_text_never_ends_inside_a_multibyte_character(tiny_llama_path):
    """Byte-fallback tokens make characters out of several tokens; cutting the
    generation anywhere must not leave a broken character (U+FFFD) at the end."""
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    for max_tokens in range(1, 12):
        for text in llm.generate_sync("日本", max_tokens=max_tokens, decoder="sample", n=4,
                                      seed=max_tokens, cache=False):
            assert not text.endswith("\ufffd")


def test_token_texts_join_to_the_completion(tiny_llama_path):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    for generation in llm.generate_sync("Zürich café", max_tokens=15, decoder="sample", n=3,
                                        seed=1, return_details=True, cache=False):
        if "\ufffd" not in generation.text:  # valid UTF-8: the stream is the text
            assert "".join(t.text for t in generation.tokens) == generation.text
        assert all(math.isfinite(t.logprob) and t.logprob <= 0 for t in generation.tokens)


def test_a_seen_prompt_is_not_run_again_and_n_sequences_share_one_prefill(tiny_llama_path,
                                                                          monkeypatch):
    from lmql_nb.backends.transformers.torch_model import TorchModel

    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    prompt = "Once upon a time there was a small town"
    llm.generate_sync(prompt, max_tokens=1, cache=False)  # loads the model
    llm.backend._model.prefixes.clear()
    shapes = []
    original = TorchModel.forward

    def recording(self, input_ids, *args, **kwargs):
        shapes.append(tuple(input_ids.shape))
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(TorchModel, "forward", recording)
    sampled = llm.generate_sync(prompt, max_tokens=4, decoder="sample", n=4, seed=2)
    prompt_tokens = shapes[0][1]
    assert shapes[0] == (1, prompt_tokens)  # one prefill for the four sequences
    assert len(shapes) > 1  # decode steps ran after the prefill
    assert all(shape == (4, 1) for shape in shapes[1:])
    shapes.clear()
    greedy = llm.generate_sync(prompt, max_tokens=4)
    assert shapes  # the model ran: no result of this call was cached
    assert all(shape[1] == 1 for shape in shapes)  # the prompt's cache was reused
    assert greedy == reference.greedy(tiny_llama_path, prompt, 4)
    assert len(sampled) == 4


def test_a_temperature_without_decoder_samples(tiny_gpt2_path):
    """LMQL's rule: a non-zero temperature without a decoder means decoder='sample'."""
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    options = dict(max_tokens=6, n=2, temperature=1.3, seed=3, cache=False)
    assert llm.generate_sync("The capital of", **options) == llm.generate_sync(
        "The capital of", decoder="sample", **options)
    assert llm.generate_sync("The capital of", max_tokens=6, temperature=0, cache=False) == \
        llm.generate_sync("The capital of", max_tokens=6, cache=False)
