"""Penalties through `lmql_nb serve`: OpenAI's frequency_penalty and presence_penalty and
vLLM's repetition_penalty, sent with the openai SDK and through lmql_nb's own client,
give what the in-process model gives (whose choices tests/generations/test_penalties.py
checks against transformers)."""

from __future__ import annotations

import httpx
import pytest

import lmql_nb

pytestmark = pytest.mark.timeout(120)

PROMPT = "The capital of"
TOKENS = 16
PENALTIES = [dict(frequency_penalty=1.5), dict(presence_penalty=1.5),
             dict(repetition_penalty=1.3), dict(repetition_penalty=1.3, frequency_penalty=-0.5,
                                                presence_penalty=0.5)]


@pytest.fixture(scope="module")
def client(gpt2_server):
    import openai

    with openai.OpenAI(api_key=gpt2_server.api_key, base_url=gpt2_server.base_url, max_retries=0,
                       timeout=60) as client:
        yield client


def sdk_arguments(penalties: dict) -> dict:
    """The openai SDK's spelling: OpenAI's fields as keywords, vLLM's in extra_body."""
    arguments = {k: v for k, v in penalties.items() if k != "repetition_penalty"}
    if "repetition_penalty" in penalties:
        arguments["extra_body"] = {"repetition_penalty": penalties["repetition_penalty"]}
    return arguments


@pytest.mark.parametrize("penalties", PENALTIES)
def test_openai_sdk_completion_equals_in_process(client, gpt2_local, penalties):
    expected = gpt2_local.generate_sync(PROMPT, max_tokens=TOKENS, return_details=True,
                                        cache=False, **penalties)
    assert expected.text != gpt2_local.generate_sync(PROMPT, max_tokens=TOKENS, cache=False)
    choice = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=TOKENS,
                                       temperature=0, logprobs=1,
                                       **sdk_arguments(penalties)).choices[0]
    assert choice.text == expected.text
    # the model's own log-probabilities, not the penalised scores
    assert choice.logprobs.token_logprobs == pytest.approx(
        [t.logprob for t in expected.tokens], abs=1e-4)


def test_openai_sdk_sampling_and_beam_search_equal_in_process(client, gpt2_local):
    sampled = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=TOKENS,
                                        temperature=0.7, n=3, seed=11, presence_penalty=2.0)
    expected = gpt2_local.generate_sync(PROMPT, max_tokens=TOKENS, decoder="sample", n=3,
                                        temperature=0.7, seed=11, presence_penalty=2.0,
                                        cache=False)
    assert [c.text for c in sorted(sampled.choices, key=lambda c: c.index)] == expected
    beams = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=8, n=3,
                                      temperature=0, extra_body={"use_beam_search": True,
                                                                 "repetition_penalty": 1.8})
    expected = gpt2_local.generate_sync(PROMPT, max_tokens=8, decoder="beam", n=3,
                                        repetition_penalty=1.8, cache=False)
    assert [c.text for c in sorted(beams.choices, key=lambda c: c.index)] == expected


@pytest.mark.parametrize("penalties", PENALTIES)
def test_lmql_nb_client_equals_in_process(gpt2_server, gpt2_local, penalties):
    remote = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                           api_key=gpt2_server.api_key, timeout=30)
    got = remote.generate_sync(PROMPT, max_tokens=TOKENS, cache=False, **penalties)
    assert got == gpt2_local.generate_sync(PROMPT, max_tokens=TOKENS, cache=False, **penalties)
    program = f'argmax\n"{PROMPT}[X]" where len(TOKENS(X)) < {TOKENS + 1}'
    result = lmql_nb.run_sync(program, model=remote, cache=False, **penalties)
    assert result.variables["X"] == got


@pytest.mark.parametrize("field, value, message", [
    ("repetition_penalty", -1.3, "repetition_penalty must be a number > 0, got -1.3"),
    ("repetition_penalty", 0, "repetition_penalty must be a number > 0, got 0"),
    ("frequency_penalty", 2.5, "frequency_penalty must be a number in [-2, 2], got 2.5"),
    ("presence_penalty", "high", "presence_penalty must be a number in [-2, 2], got str"),
])
def test_bad_penalties_are_400_naming_the_field(gpt2_server, field, value, message):
    response = httpx.post(f"{gpt2_server.base_url}/completions", timeout=30,
                          headers={"Authorization": f"Bearer {gpt2_server.api_key}"},
                          json={"model": "tiny-gpt2", "prompt": "Hi", field: value})
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.parametrize("owner, vllm_like, refused", [
    ("vllm", True, "vLLM's beam search ignores penalties"),
    ("", False, "would ignore it"),
])
def test_servers_that_would_ignore_a_penalty_refuse_it(owner, vllm_like, refused):
    from lmql_nb.backends.openai.dialect import Server, request_parameters
    from lmql_nb.core.options import parse_generate_options

    server = Server("m", "http://127.0.0.1:1/v1", chat=False, official=False,
                    vllm_like=vllm_like, owner=owner)
    decoder = "beam" if vllm_like else "argmax"
    with pytest.raises(ValueError, match=refused):
        request_parameters(parse_generate_options(4, decoder=decoder, n=2 if vllm_like else 1,
                                                  repetition_penalty=1.3), server)
    if vllm_like:  # argmax and sampling take them (vLLM's SamplingParams)
        params = request_parameters(parse_generate_options(
            4, repetition_penalty=1.3, frequency_penalty=0.5), server)
        assert params["frequency_penalty"] == 0.5
        assert params["extra_body"]["repetition_penalty"] == 1.3


def test_a_served_branch_with_penalties_equals_in_process(gpt2_server, gpt2_local):
    remote = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                           api_key=gpt2_server.api_key, timeout=30)
    penalties = dict(frequency_penalty=1.5, repetition_penalty=1.2)
    branches = []
    for llm in (remote, gpt2_local):
        original = llm.generate_sync(PROMPT, max_tokens=8, return_details=True, cache=False)
        branches.append(llm.branch_sync(original, 2, original.tokens[2].top[1].token_id,
                                        max_tokens=12, **penalties))
    served, local = branches
    assert [t.token_id for t in served.tokens] == [t.token_id for t in local.tokens]
    assert served.text == local.text
