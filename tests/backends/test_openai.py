"""The `openai/` backend against the real server: the same answers as in process."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

import pytest

import lmql_nb
from lmql_nb.errors import (ApproximateScoreWarning, OpenAIBackendError,
                            ScoringNotSupported)

pytestmark = pytest.mark.timeout(120)

PROMPTS = ["The capital of France is", "Once upon a time", "Numbers: 1 2"]
VALUES = [" Paris", " Berlin", "Paris", " London and more", "x"]


@pytest.fixture(scope="module")
def remote_gpt2(gpt2_server):
    return lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                         api_key=gpt2_server.api_key, timeout=30)


@pytest.fixture(scope="module")
def remote_llama(llama_server):
    return lmql_nb.model("tiny-llama", endpoint=f"127.0.0.1:{llama_server.port}", timeout=30)


def _pairs(request, which):
    return (request.getfixturevalue(f"remote_{which}"), request.getfixturevalue(f"{which}_local"))


def _same_tokens(got, expected) -> None:
    """Served tokens are the in-process ones (`lmql_nb serve` sends them whole: ids,
    ranks, entropy, alternatives with their ids and `blocked` flags, constrained
    numbers); numbers within 1e-4 (another process computes them)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g.token_id, g.text, g.rank) == (e.token_id, e.text, e.rank)
        assert g.logprob == pytest.approx(e.logprob, abs=1e-4)
        assert g.entropy == pytest.approx(e.entropy, abs=1e-4)
        for mine, theirs in ((g.top, e.top), (g.allowed, e.allowed)):
            assert [(a.token_id, a.text, a.blocked) for a in mine] == \
                [(a.token_id, a.text, a.blocked) for a in theirs]
            assert [a.logprob for a in mine] == pytest.approx([a.logprob for a in theirs],
                                                              abs=1e-4)
        if e.constrained_logprob is None:
            assert g.constrained_logprob is None
        else:
            assert g.constrained_logprob == pytest.approx(e.constrained_logprob, abs=1e-4)


@pytest.mark.parametrize("which", ["gpt2", "llama"])
def test_generation_equals_in_process(request, which):
    remote, local = _pairs(request, which)
    for prompt in PROMPTS:
        expected = local.generate_sync(prompt, max_tokens=10, return_details=True, cache=False,
                                       top_logprobs=3)
        got = remote.generate_sync(prompt, max_tokens=10, return_details=True, cache=False,
                                   top_logprobs=3)
        assert got.text == expected.text
        assert got.finish_reason == expected.finish_reason
        _same_tokens(got.tokens, expected.tokens)


@pytest.mark.parametrize("which", ["gpt2", "llama"])
def test_scores_equal_in_process(request, which):
    remote, local = _pairs(request, which)
    for prompt in ["The capital of France is", "The capital of France is "]:
        expected = local.score_sync(prompt, VALUES, cache=False)
        got = remote.score_sync(prompt, VALUES, cache=False)
        assert got.token_ids == expected.token_ids
        assert got.tokens == expected.tokens
        for g, e in zip(got.token_scores, expected.token_scores):
            assert g == pytest.approx(e, abs=1e-4)


def test_streaming_tokens_match_the_result(remote_gpt2, gpt2_local):
    seen: list[tuple[int, str, float]] = []
    result = remote_gpt2.generate_sync(PROMPTS[0], max_tokens=8, return_details=True,
                                       cache=False, on_token=lambda i, t: seen.append(
                                           (i, t.text, t.logprob)))
    assert [(0, t.text, t.logprob) for t in result.tokens] == seen
    expected = gpt2_local.generate_sync(PROMPTS[0], max_tokens=8, cache=False)
    assert result.text == expected


def test_an_on_token_error_reaches_the_caller_unchanged(remote_gpt2):
    class CallbackFailed(Exception):
        pass

    def on_token(index, token):
        raise CallbackFailed("raised by on_token")

    with pytest.raises(CallbackFailed, match="raised by on_token"):
        remote_gpt2.generate_sync(PROMPTS[0], max_tokens=4, cache=False, on_token=on_token)


def test_sampling_n_and_seed(remote_gpt2):
    first = remote_gpt2.generate_sync(PROMPTS[1], max_tokens=8, decoder="sample", n=3, seed=3)
    assert len(first) == 3 and len(set(first)) > 1
    assert remote_gpt2.generate_sync(PROMPTS[1], max_tokens=8, decoder="sample", n=3,
                                     seed=3) == first


def test_stop_option(gpt2_server, gpt2_local):
    whole = gpt2_local.generate_sync(PROMPTS[0], max_tokens=16, cache=False)
    stop = whole[len(whole) // 2:len(whole) // 2 + 2]
    stopping = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                             api_key=gpt2_server.api_key, stop=(stop,))
    result = stopping.generate_sync(PROMPTS[0], max_tokens=16, return_details=True, cache=False)
    assert result.text == whole[:whole.index(stop)]
    assert result.finish_reason == "stop"


def test_beam_search_equals_in_process(remote_gpt2, gpt2_local):
    expected = gpt2_local.generate_sync(PROMPTS[0], max_tokens=6, decoder="beam", n=2,
                                        cache=False)
    assert remote_gpt2.generate_sync(PROMPTS[0], max_tokens=6, decoder="beam", n=2,
                                     cache=False) == expected


def test_remote_tokenizer(remote_gpt2, gpt2_local):
    remote, local = remote_gpt2.get_tokenizer(), gpt2_local.get_tokenizer()
    assert remote.encode(PROMPTS[0]) == local.encode(PROMPTS[0])
    assert remote.decode(local.encode(PROMPTS[1])) == PROMPTS[1]


def test_remote_tokenize_asks_for_each_distinct_token_once(fault_proxy, gpt2_server,
                                                          gpt2_local):
    llm = lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                        api_key=gpt2_server.api_key)
    remote, local = llm.get_tokenizer(), gpt2_local.get_tokenizer()
    text = "the the capital of the country"
    ids = local.encode(text)
    before = len(fault_proxy.requests)
    assert remote.tokenize(text) == [local.decode([i]) for i in ids]
    assert len(fault_proxy.requests) - before == 1 + len(set(ids))  # /tokenize + /detokenize
    before = len(fault_proxy.requests)
    assert remote.tokenize(text) == [local.decode([i]) for i in ids]
    assert len(fault_proxy.requests) - before == 1  # the pieces are known now


def test_scoring_that_cannot_be_exact_says_what_works(gpt2_server):
    chat = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                         api_key=gpt2_server.api_key, chat=True)
    with pytest.raises(ScoringNotSupported, match="vLLM"):
        chat.score_sync("Hi", [" there"])
    official = lmql_nb.model("openai/gpt-4o-mini", api_key="sk-not-used-offline")
    with pytest.raises(ScoringNotSupported, match="no prompt log-probabilities.*vLLM"):
        official.score_sync("Hi", [" there"])
    instruct = lmql_nb.model("openai/gpt-3.5-turbo-instruct", api_key="sk-not-used-offline")
    with pytest.raises(ScoringNotSupported, match="refuses echo with logprobs"):
        instruct.score_sync("Hi", [" there"])


def test_first_token_approximation_is_opt_in_and_labelled(gpt2_server, gpt2_local):
    approx = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                           api_key=gpt2_server.api_key, scoring="first-token-approximation")
    values = [" Paris", " Berlin"]
    with pytest.warns(ApproximateScoreWarning):
        result = approx.score_sync(PROMPTS[0], values, cache=False)
    assert all(t[0].startswith("≈") for t in result.tokens)
    # independent: the first token's log-probability in process, where it is in the top 20
    top = gpt2_local.generate_sync(PROMPTS[0], max_tokens=1, return_details=True,
                                   top_logprobs=20, cache=False).tokens[0].top
    for value, score in zip(values, result.scores()):
        matches = [a for a in top if a.text and value.startswith(a.text)]
        if matches:
            best = max(matches, key=lambda a: len(a.text))
            assert score == pytest.approx(best.logprob, abs=1e-4)
        else:
            assert score == pytest.approx(min(a.logprob for a in top), abs=1e-4)


def test_api_key_never_shown(gpt2_server, caplog):
    secret = "sk-very-secret-key-0123456789abcdef"
    caplog.set_level(logging.DEBUG)
    llm = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url, api_key=secret,
                        max_retries=1)
    with pytest.raises(OpenAIBackendError) as info:
        llm.generate_sync("Hi", max_tokens=1)
    shown = [repr(llm), str(llm), repr(llm.backend), str(info.value),
             "".join(traceback.format_exception(info.value)), caplog.text,
             repr(llm.backend.__dict__)]
    assert "401" in str(info.value)
    for text in shown:
        assert secret not in text
    with pytest.raises(TypeError) as error:  # a wrong option next to the key
        lmql_nb.model("openai/gpt-4o", api_key=secret, chat="yes")
    assert secret not in str(error.value)
    with pytest.raises(TypeError) as error:  # an unhashable option next to the key
        lmql_nb.model("openai/gpt-4o", api_key=secret, stop=["x"])
    assert secret not in str(error.value) and "stop" in str(error.value)


def test_server_killed_mid_request_then_restarted(tiny_gpt2_path, server_process):
    import httpx

    ServerProcess = server_process
    server = ServerProcess(f"local:{tiny_gpt2_path}", "victim")
    try:
        llm = lmql_nb.model("victim", endpoint=f"127.0.0.1:{server.port}",
                            api_key=server.api_key, max_retries=1, timeout=10)
        assert llm.generate_sync("Hi", max_tokens=2, cache=False) is not None

        async def long_request_then_kill():
            task = asyncio.ensure_future(llm.generate(PROMPTS[0], max_tokens=None,
                                                      decoder="sample", n=32, cache=False))
            async with httpx.AsyncClient() as http:
                for _ in range(500):
                    health = (await http.get(f"{server.root}/health")).json()
                    if health["running"]:
                        break
                    await asyncio.sleep(0.01)
            assert health["running"], "the request never reached the engine"
            server.kill()
            return await task

        started = time.monotonic()
        with pytest.raises(OpenAIBackendError, match="connection|broke off|failed"):
            asyncio.run(long_request_then_kill())
        assert time.monotonic() - started < 30
        port = server.port
        server = ServerProcess(f"local:{tiny_gpt2_path}", "victim", port=port)
        assert llm.generate_sync("Hi", max_tokens=2, cache=False) is not None
    finally:
        server.stop()


def test_cancellation_closes_the_request(fault_proxy, gpt2_server):
    llm = lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                        api_key=gpt2_server.api_key, timeout=60)

    async def start_and_cancel():
        fault_proxy.default = "forward"
        await llm._ready()  # the probe goes through
        fault_proxy.default = "stall"
        task = asyncio.ensure_future(llm.generate("Hi", max_tokens=4, cache=False))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_and_cancel())
    assert fault_proxy.wait_abandoned(5), "the HTTP request stayed open after cancellation"


@pytest.mark.parametrize("constraint", [
    {"choices": [" Paris", " Berlin", " Rome"]},
    {"regex": r" [0-9]{2}"},
    {"type": int},
    {"json_schema": {"type": "object", "properties": {"a": {"type": "integer"}},
                     "required": ["a"]}},
    {"stops_before": ["a"]},
    {"stops_at": ["a"]},
], ids=["choices", "regex", "int", "json", "stops_before", "stops_at"])
def test_constraints_over_http_equal_in_process(remote_gpt2, gpt2_local, constraint):
    expected = gpt2_local.generate_sync(PROMPTS[0], max_tokens=12, cache=False, **constraint)
    got = remote_gpt2.generate_sync(PROMPTS[0], max_tokens=12, cache=False, **constraint)
    assert got == expected


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_constrained_tokens_over_http_carry_blocked_and_constrained_numbers(
        remote_gpt2, gpt2_local, stream):
    """Under a constraint the views strike out the alternatives it ruled out and colour
    tokens by their constrained probability: served tokens carry both, as in process
    (before, they came back with no `blocked` flag and no constrained numbers)."""
    options = dict(max_tokens=6, regex=r" [a-c]+", top_logprobs=4, cache=False,
                   return_details=True)
    expected = gpt2_local.generate_sync(PROMPTS[0], **options)
    seen = []
    got = remote_gpt2.generate_sync(PROMPTS[0], **options,
                                    **({"on_token": lambda i, t: seen.append(t)} if stream
                                       else {}))
    assert got.text == expected.text
    assert any(a.blocked for t in expected.tokens for a in t.top)  # the case to carry
    assert all(t.constrained_logprob is not None for t in expected.tokens)
    _same_tokens(got.tokens, expected.tokens)
    if stream:
        _same_tokens(seen, expected.tokens)


def test_constraints_http_cannot_carry_say_so(remote_gpt2):
    with pytest.raises(ValueError, match="cannot enforce choices and type=int together"):
        remote_gpt2.generate_sync("Hi", max_tokens=4, choices=["1", "2"], type=int)
    official = lmql_nb.model("openai/gpt-4o-mini", api_key="sk-not-used-offline")
    with pytest.raises(ValueError, match="OpenAI's API cannot enforce choices"):
        official.generate_sync("Hi", max_tokens=4, choices=["a", "b"])


def test_chat_models_use_the_chat_endpoint(gpt2_server):
    chat = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                         api_key=gpt2_server.api_key, chat=True)
    with pytest.raises(OpenAIBackendError, match="HTTP 400: this model has no chat template"):
        chat.generate_sync("Hi", max_tokens=2)


def test_a_generated_end_of_sequence_is_the_end_token_not_a_token(remote_gpt2, gpt2_local):
    """The server lists a generated end-of-sequence token in the logprobs (as vLLM does);
    the client keeps it apart, as `Generation.end_token`, like an in-process model."""
    options = dict(max_tokens=40, decoder="sample", temperature=3.0, n=8, return_details=True,
                   cache=False)
    for seed in range(20):
        expected = gpt2_local.generate_sync("Once", seed=seed, **options)
        ended = [i for i, g in enumerate(expected) if g.end_token is not None]
        if ended:
            break
    assert ended, "no sampled sequence ended at end-of-sequence (pick other settings)"
    tokens: dict[int, list] = {}
    for stream in (False, True):
        on_token = (lambda i, t: tokens.setdefault(i, []).append(t)) if stream else None
        got = remote_gpt2.generate_sync("Once", seed=seed, on_token=on_token, **options)
        for i in ended:
            assert got[i].text == expected[i].text
            assert [t.text for t in got[i].tokens] == [t.text for t in expected[i].tokens]
            assert got[i].end_token is not None
            assert got[i].end_token.logprob == pytest.approx(expected[i].end_token.logprob,
                                                             abs=1e-4)
            if stream:
                assert [t.text for t in tokens[i]] == [t.text for t in expected[i].tokens]
