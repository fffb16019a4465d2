"""Issue 25: `branch` continues a generation only on the model that made it, and refuses
a token that is empty text."""

from __future__ import annotations

import pytest

import lmql_nb


@pytest.fixture(scope="module")
def models(tiny_gpt2_path, tiny_llama_path):
    return (lmql_nb.model(f"local:{tiny_gpt2_path}"), lmql_nb.model(f"local:{tiny_llama_path}"))


def test_a_generation_records_its_model_and_its_files(models):
    gpt2, llama = models
    fresh = gpt2.generate_sync("Hello", max_tokens=4, return_details=True, cache=False)
    cached = gpt2.generate_sync("Hello", max_tokens=4, return_details=True)
    cached = gpt2.generate_sync("Hello", max_tokens=4, return_details=True)  # from the cache
    other = llama.generate_sync("Hello", max_tokens=4, return_details=True)
    for generation in (fresh, cached):
        assert generation.model == gpt2.model_identifier
        assert generation.fingerprint == fresh.fingerprint != ""
    assert other.model == llama.model_identifier
    assert other.fingerprint and other.fingerprint != fresh.fingerprint


def test_branch_refuses_a_generation_of_another_model(models):
    gpt2, llama = models
    generation = gpt2.generate_sync("Hello", max_tokens=4, return_details=True)
    alternative = generation.tokens[1].top[1]
    with pytest.raises(ValueError, match="comes from the model") as raised:
        llama.branch_sync(generation, 1, alternative.token_id)
    assert gpt2.model_identifier in str(raised.value)
    assert llama.model_identifier in str(raised.value)
    # the model that made it (another handle on the same model) branches it
    same = lmql_nb.model(gpt2.model_identifier)
    branched = same.branch_sync(generation, 1, alternative, max_tokens=2)
    assert branched.tokens[0].token_id == alternative.token_id
    assert branched.model == gpt2.model_identifier


def test_branch_refuses_an_empty_text_token(models):
    gpt2, _ = models
    generation = gpt2.generate_sync("Hello", max_tokens=4, return_details=True)
    with pytest.raises(ValueError, match="empty text"):
        gpt2.branch_sync(generation, 1, "")


def test_branch_continues_a_generation_whose_ids_this_tokenizer_reads_alike(models, tiny_gpt2_path):
    # the same folder in bfloat16 is another model (its numbers differ) with the same
    # vocabulary: its ids mean the same text, so the branch runs there, from the same ids
    gpt2, _ = models
    generation = gpt2.generate_sync("Hello", max_tokens=4, return_details=True)
    other = lmql_nb.model(f"local:{tiny_gpt2_path}", dtype="bfloat16")
    alternative = generation.tokens[1].top[1]
    branched = other.branch_sync(generation, 1, alternative, max_tokens=2)
    assert list(branched.prefix_ids) == [*generation.prefix_ids, generation.tokens[0].token_id]
    assert branched.tokens[0].token_id == alternative.token_id
    assert branched.model == other.model_identifier
