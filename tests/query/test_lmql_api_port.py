"""LMQL's own src/lmql/tests/test_api.py (eth-sri/lmql), run against lmql_nb.

Ported as written, with two changes: `import lmql_nb as lmql`, and LMQL's `random` model
(and `local:sshleifer/tiny-gpt2`, a hub download) swapped for the embedded Gemma. Its
OpenAI test is left out (no network here); async tests run under anyio's pytest plugin.
"""

import numpy as np
import pytest

import lmql_nb as lmql


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def embedded(gemma):
    lmql.set_default_model(gemma)
    yield gemma
    lmql.api._default = None


@pytest.mark.gemma
def test_generate_sync(embedded):
    lmql.set_default_model(embedded)

    result = lmql.generate_sync("Test", max_tokens=10)
    assert type(result) is str and len(result) > 0


@pytest.mark.gemma
@pytest.mark.anyio
async def test_generate(embedded):
    lmql.set_default_model(embedded)

    result = await lmql.generate("Test", max_tokens=10)
    assert type(result) is str and len(result) > 0


@pytest.mark.gemma
@pytest.mark.anyio
async def test_llm_generate(embedded):
    llm = embedded
    result = await llm.generate("Test", max_tokens=10)
    assert type(result) is str and len(result) > 0


@pytest.mark.gemma
@pytest.mark.anyio
async def test_llm_multi_generate(embedded):
    llm = embedded
    # LMQL's test passes ["Test", "Test"]: lmql_nb takes one prompt per call
    result = await llm.generate("Test", max_tokens=10, temperature=0.2, n=2)
    assert type(result) is list and len(result) == 2
    for r in result:
        assert type(r) is str and len(r) > 0


@pytest.mark.gemma
def test_score_sync(embedded):
    lmql.set_default_model(embedded)

    result = lmql.score_sync("Test", "Test")

    assert type(result) is lmql.ScoringResult
    assert len(result.seqs) == 1
    assert len(result.token_scores) == 1 and result.token_scores[0].shape == (1,)
    assert len(result.full_token_scores) == 1 and np.array(result.full_token_scores[0]).shape == (2,)

    assert result.logprobs().shape == (1,)


@pytest.mark.gemma
def test_llm_score_two(embedded):
    lmql.set_default_model(embedded)

    result = lmql.score_sync("Hello", ["World", "Test"])

    assert type(result) is lmql.ScoringResult
    assert len(result.seqs) == 2
    assert len(result.token_scores) == 2 and result.token_scores[0].shape == (1,)
    assert len(result.full_token_scores) == 2 and np.array(result.full_token_scores[0]).shape == (2,)

    assert result.argmax() in ["World", "Test"]


@pytest.mark.gemma
def test_llm_local(embedded):
    m = embedded
    assert m.score_sync("Hello", ["World", "Test"]).argmax() in ["World", "Test"]


def test_full_token_scores_are_the_forward_pass(tiny_path):
    """Beyond the port: the prompt's token scores equal transformers' own forward pass
    over the prompt; the value's part is `token_scores`."""
    import reference

    llm = lmql.model(f"local:{tiny_path}")
    prompt = "The capital of France is"
    result = llm.score_sync(prompt, [" Paris", " it"])
    ids = llm.get_tokenizer().encode_prompt(prompt)
    rows = reference.token_logprobs(tiny_path, ids)
    expected = [float(rows[j, ids[j + 1]]) for j in range(len(ids) - 1)]
    for i in range(2):
        full = result.full_token_scores[i]
        assert list(result.seqs[i].input_ids) == ids[1:] + result.token_ids[i]
        assert list(full[:len(ids) - 1]) == pytest.approx(expected, abs=1e-4)
        assert list(full[len(ids) - 1:]) == list(result.token_scores[i])
        assert result.num_value_tokens[i] == len(result.token_ids[i])
