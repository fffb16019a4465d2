"""Echoed prompt log-probabilities in shared forward passes (`ServedModel.prompt_logprobs`).

A scoring request sends each prompt once per value; the server scores the prompts of
a group (a shared prefix) in one job, the groups of a request and of requests arriving
together in the same passes. Expected numbers come from transformers' own forward pass
over each prompt alone (`reference.token_logprobs`), never from lmql_nb.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx
import numpy as np
import pytest

import lmql_nb
from lmql_nb.backends.protocol import token_id_backend
from lmql_nb.backends.transformers.torch_model import TorchModel
from lmql_nb.server.bridge import ServedModel, prefix_groups

import reference

pytestmark = pytest.mark.timeout(180)

TEXTS = ["The capital of France is", "Once upon a time there was a", "Numbers: 0 1 2 3",
         "The capital of Germany is Berlin. The capital of France is"]
VALUES = [" Paris", " a city by the river", " 42"]


def _requests(tokenizer) -> list[list[list[int]]]:
    """Three requests: prompts with each value (1 to 5 value tokens), in mixed order,
    plus a one-token prompt, a repeated prompt and an unrelated one."""
    prompts = [reference.prompt_ids(tokenizer, text) for text in TEXTS]
    values = [tokenizer.encode(v, add_special_tokens=False) for v in VALUES]
    joint = [p + v for p in prompts for v in values]
    return [joint[0:6][::-1] + [prompts[0][:1], joint[2]],
            joint[6:] + [[7, 8, 9, 10]],
            [joint[4], prompts[3], joint[11]]]


def _expected(path, ids: list[int]) -> list[float]:
    table = reference.token_logprobs(path, ids)
    return [float(table[i - 1, ids[i]]) for i in range(1, len(ids))]


@pytest.fixture
def served(tiny_path):
    llm = lmql_nb.model(f"local:{tiny_path}")
    model = ServedModel(token_id_backend(llm.backend, "tiny"), "tiny", "tiny")
    model.load()
    llm.backend._worker._batch_window = 0.3  # the requests of a test always meet
    return model


@pytest.fixture
def passes(monkeypatch) -> list:
    """Per `score_rows` pass: (the calls in it, whether it scored prefixes)."""
    seen = []
    original = TorchModel.score_rows

    def score_rows(self, rows, **options):
        seen.append(({row.call for row in rows}, options.get("score_prefix", False)))
        return original(self, rows, **options)

    monkeypatch.setattr(TorchModel, "score_rows", score_rows)
    return seen


def test_prefix_groups():
    a, b = [1, 2, 3, 4, 5, 6], [9, 8, 7, 6]
    prompts = [a + [10], b + [11], a + [12, 13], [5], a + [14], b + [15], [1, 2, 99]]
    groups = prefix_groups(prompts)
    assert sorted(sorted(members) for _, members in groups) == [[0, 2, 4], [1, 5], [6]]
    for shared, members in groups:
        assert all(prompts[i][:shared] == prompts[members[0]][:shared] for i in members)
        assert all(len(prompts[i]) > shared for i in members)  # a token left to score
    assert dict((tuple(m), s) for s, m in groups)[(0, 2, 4)] == 6
    assert prefix_groups([[1], [2]]) == []  # one-token prompts have nothing to score


def test_concurrent_requests_share_passes_and_each_gets_its_own_numbers(served, tiny_path,
                                                                         passes):
    _, tokenizer = reference.load(tiny_path)
    requests = _requests(tokenizer)

    async def together():
        return await asyncio.gather(*[served.prompt_logprobs(r, None) for r in requests])

    answers = asyncio.run(together())
    # every group of every request in one pass that scored the prompts themselves
    assert passes == [(passes[0][0], True)] and len(passes[0][0]) >= 6
    for prompts, answer in zip(requests, answers):
        assert len(answer) == len(prompts)
        for ids, scored in zip(prompts, answer):
            assert len(scored) == len(ids) and scored[0] is None
            np.testing.assert_allclose([s.logprob for s in scored[1:]],
                                       _expected(tiny_path, ids), rtol=0, atol=1e-4)


def test_top_alternatives_of_grouped_prompts(served, tiny_path):
    _, tokenizer = reference.load(tiny_path)
    prompts = _requests(tokenizer)[0]
    answer = asyncio.run(served.prompt_logprobs(prompts, 3))
    for ids, scored in zip(prompts, answer):
        table = reference.token_logprobs(tiny_path, ids)
        for i, token in enumerate(scored[1:], 1):
            assert token.logprob == pytest.approx(float(table[i - 1, ids[i]]), abs=1e-4)
            assert len(token.top) == 3
            assert token.top[0][1] == pytest.approx(float(table[i - 1].max()), abs=1e-4)
            row, own = table[i - 1], table[i - 1, ids[i]]
            assert 1 + int((row > own + 1e-4).sum()) <= token.rank <= int((row > own - 1e-4).sum())


def test_a_cancelled_request_leaves_the_others_their_numbers(served, tiny_path, passes):
    _, tokenizer = reference.load(tiny_path)
    requests = _requests(tokenizer)

    async def together():
        tasks = [asyncio.ensure_future(served.prompt_logprobs(r, None)) for r in requests]
        await asyncio.sleep(0.05)  # queued for the worker, inside its batch window
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, cancelled, last = asyncio.run(together())
    assert isinstance(cancelled, asyncio.CancelledError)
    for prompts, answer in ((requests[0], first), (requests[2], last)):
        for ids, scored in zip(prompts, answer):
            np.testing.assert_allclose([s.logprob for s in scored[1:]],
                                       _expected(tiny_path, ids), rtol=0, atol=1e-4)


def test_concurrent_http_requests_with_bad_ones_among_them(gpt2_server, tiny_gpt2_path):
    """Over HTTP, at once: good requests each get exactly their transformers numbers, in
    order; requests with a token outside the vocabulary or longer than the context are
    refused with a 400 naming the problem, and fail nothing else."""
    _, tokenizer = reference.load(tiny_gpt2_path)
    good = _requests(tokenizer)
    bad = [[[1, 2, 10**6]], [list(range(1, 300))]]
    headers = {"Authorization": f"Bearer {gpt2_server.api_key}"}

    def post(prompts):
        body = {"model": "tiny-gpt2", "prompt": prompts, "max_tokens": 0, "echo": True,
                "logprobs": 0, "temperature": 0}
        return httpx.post(f"{gpt2_server.base_url}/completions", json=body, headers=headers,
                          timeout=60)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, [good[0], bad[0], good[1], bad[1], good[2]] * 2))
    for answer, prompts in zip(answers, [good[0], None, good[1], None, good[2]] * 2):
        if prompts is None:
            assert answer.status_code == 400
            message = answer.json()["error"]["message"]
            assert "outside the vocabulary" in message or "context" in message
            continue
        assert answer.status_code == 200, answer.text
        choices = answer.json()["choices"]
        assert [c["index"] for c in choices] == list(range(len(prompts)))
        for ids, choice in zip(prompts, choices):
            logprobs = choice["logprobs"]["token_logprobs"]
            assert logprobs[0] is None and len(logprobs) == len(ids)
            np.testing.assert_allclose(logprobs[1:], _expected(tiny_gpt2_path, ids),
                                       rtol=0, atol=1e-4)


# `logprobs_from`: this server's extension, the echo computed from a token on -------------

def _starts(prompts: list[list[int]]) -> list[int]:
    """A start per prompt: from the first token, the second, the last, past the end, and
    (the most common, as `score` sends it) where a value would begin."""
    choices = [lambda n: 0, lambda n: 1, lambda n: n - 1, lambda n: n + 3, lambda n: n // 2]
    return [choices[i % len(choices)](len(ids)) for i, ids in enumerate(prompts)]


def _post(server, body):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    return httpx.post(f"{server.base_url}/completions", json=body, headers=headers, timeout=60)


def _echo_body(prompts, **extra):
    return {"model": "tiny-gpt2", "prompt": prompts, "max_tokens": 0, "echo": True,
            "logprobs": 0, "temperature": 0, **extra}


def test_logprobs_from_over_the_openai_sdk_equals_transformers_and_the_full_echo(
        gpt2_server, tiny_gpt2_path):
    """Through the `openai` SDK: tokens before each prompt's start are null, the others
    are transformers' numbers and the full echo's (the same request without it)."""
    import openai

    _, tokenizer = reference.load(tiny_gpt2_path)
    prompts = _requests(tokenizer)[0] + _requests(tokenizer)[1]
    starts = _starts(prompts)
    client = openai.OpenAI(base_url=gpt2_server.base_url, api_key=gpt2_server.api_key)
    full = client.completions.create(model="tiny-gpt2", prompt=prompts, max_tokens=0,
                                     echo=True, logprobs=0, temperature=0)
    cut = client.completions.create(model="tiny-gpt2", prompt=prompts, max_tokens=0,
                                    echo=True, logprobs=0, temperature=0,
                                    extra_body={"logprobs_from": starts})
    for ids, start, whole, part in zip(prompts, starts, full.choices, cut.choices):
        scores = part.logprobs.token_logprobs
        first = min(max(start, 1), len(ids))
        assert len(scores) == len(ids) and len(part.logprobs.tokens) == len(ids)
        assert scores[:first] == [None] * first
        assert all(t is None for t in part.logprobs.top_logprobs[:first])
        expected = _expected(tiny_gpt2_path, ids)[first - 1:]
        np.testing.assert_allclose(scores[first:], expected, rtol=0, atol=1e-4)
        np.testing.assert_allclose(scores[first:], whole.logprobs.token_logprobs[first:],
                                   rtol=0, atol=1e-4)
    one = client.completions.create(model="tiny-gpt2", prompt=prompts[0], max_tokens=0,
                                    echo=True, logprobs=0, temperature=0,
                                    extra_body={"logprobs_from": 3})  # one index for all
    assert one.choices[0].logprobs.token_logprobs[:3] == [None] * 3
    np.testing.assert_allclose(one.choices[0].logprobs.token_logprobs[3:],
                               _expected(tiny_gpt2_path, prompts[0])[2:], rtol=0, atol=1e-4)


def test_logprobs_from_with_top_alternatives(served, tiny_path):
    _, tokenizer = reference.load(tiny_path)
    prompts = _requests(tokenizer)[0]
    starts = _starts(prompts)
    answer = asyncio.run(served.prompt_logprobs(prompts, 3, starts))
    for ids, start, scored in zip(prompts, starts, answer):
        first = min(max(start, 1), len(ids))
        assert len(scored) == len(ids) and scored[:first] == [None] * first
        table = reference.token_logprobs(tiny_path, ids)
        for i, token in enumerate(scored[first:], first):
            assert token.logprob == pytest.approx(float(table[i - 1, ids[i]]), abs=1e-4)
            assert token.top[0][1] == pytest.approx(float(table[i - 1].max()), abs=1e-4)


def test_logprobs_from_projects_fewer_positions_than_the_full_echo(served, tiny_path,
                                                                   monkeypatch):
    """The engine's own scoring (`score` in process): the vocabulary projected at the
    values' positions (and their padding), not at every prompt token as a full echo
    needs."""
    _, tokenizer = reference.load(tiny_path)
    prompt = reference.prompt_ids(tokenizer, TEXTS[3])  # a long prompt with each value
    prompts = [prompt + tokenizer.encode(v, add_special_tokens=False)
               for v in (" Paris", " 42", " Rome")]
    head = served._backend._model.model.get_output_embeddings()
    seen = []  # positions in each output of the vocabulary projection
    hook = head.register_forward_hook(
        lambda module, args, output: seen.append(output.numel() // output.shape[-1]))
    try:
        answer = asyncio.run(served.prompt_logprobs(prompts, None,
                                                    [len(prompt)] * len(prompts)))
        for ids, scored in zip(prompts, answer):
            np.testing.assert_allclose([s.logprob for s in scored[len(prompt):]],
                                       _expected(tiny_path, ids)[len(prompt) - 1:],
                                       atol=1e-4)
        projected = sum(seen)
        seen.clear()
        asyncio.run(served.prompt_logprobs(prompts, None))
        full = sum(seen)
    finally:
        hook.remove()
    values = [len(ids) - len(prompt) for ids in prompts]
    assert full >= len(prompt) - 1 + sum(values) - len(values)  # every prompt token's
    # the prompt's last position and the values' (padded), none of the prompt's others
    # (and the one position a pass hands the model's own projection, see `hidden_states`)
    assert projected <= 2 + len(prompts) * max(values) < full


def test_concurrent_mixed_requests_with_and_without_logprobs_from(gpt2_server,
                                                                  tiny_gpt2_path):
    """At once over HTTP: full echoes, echoes from a token on, and bad `logprobs_from`
    values; each good one gets exactly its transformers numbers, each bad one a 400."""
    _, tokenizer = reference.load(tiny_gpt2_path)
    good = _requests(tokenizer)
    bodies = []
    for prompts in good:
        bodies.append((_echo_body(prompts), prompts, None))
        bodies.append((_echo_body(prompts, logprobs_from=_starts(prompts)), prompts,
                       _starts(prompts)))
    bodies.append((_echo_body(good[0], logprobs_from=-1), None, None))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: _post(gpt2_server, b[0]), bodies * 2))
    for answer, (_, prompts, starts) in zip(answers, bodies * 2):
        if prompts is None:
            assert answer.status_code == 400 and "logprobs_from" in answer.text
            continue
        assert answer.status_code == 200, answer.text
        for i, (ids, choice) in enumerate(zip(prompts, answer.json()["choices"])):
            first = 1 if starts is None else min(max(starts[i], 1), len(ids))
            logprobs = choice["logprobs"]["token_logprobs"]
            assert logprobs[:first] == [None] * first and len(logprobs) == len(ids)
            np.testing.assert_allclose(logprobs[first:],
                                       _expected(tiny_gpt2_path, ids)[first - 1:],
                                       rtol=0, atol=1e-4)


@pytest.mark.parametrize("extra, words", [
    ({"logprobs_from": -1}, "an integer >= 0"),
    ({"logprobs_from": "3"}, "an integer >= 0"),
    ({"logprobs_from": True}, "an integer >= 0"),
    ({"logprobs_from": [1, 2, 3]}, "a list of 2 such indices, one per prompt"),
    ({"logprobs_from": [1, 2.5]}, "one per prompt"),
    ({"logprobs_from": 2, "echo": False}, "echo=true and logprobs"),
])
def test_bad_logprobs_from_is_a_400_naming_it(gpt2_server, extra, words):
    answer = _post(gpt2_server, {**_echo_body([[1, 2, 3], [4, 5, 6]]), **extra})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "logprobs_from" in error["message"] and words in error["message"]
    assert error["param"] == "logprobs_from"
