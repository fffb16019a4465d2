"""`/v1/chat/completions` of `python -m lmql_nb serve` through the openai SDK: the same
rendering path as in process, so the same tokens and log-probabilities, and the same
tokens transformers' own `apply_chat_template` gives."""

from __future__ import annotations

import pytest

import lmql_nb

import reference
from chat_models import MESSAGES


@pytest.fixture(scope="module")
def chat_server(server_process, chat_path):
    server = server_process(f"local:{chat_path}", "tiny-chat", api_key=None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(chat_server):
    import openai

    with openai.OpenAI(api_key="none", base_url=chat_server.base_url, max_retries=0,
                       timeout=120) as client:
        yield client


def test_chat_completion_equals_in_process_tokens_and_logprobs(client, chat_path):
    chat = client.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=12,
                                          temperature=0, logprobs=True, top_logprobs=3)
    choice = chat.choices[0]
    local = lmql_nb.model(f"local:{chat_path}").generate_sync(
        MESSAGES, max_tokens=12, return_details=True, top_logprobs=3, cache=False)
    assert choice.message.content == local.text
    assert choice.finish_reason == "stop"  # the template's end of turn ended it
    served = choice.logprobs.content
    # the server lists the end-of-turn token too, as vLLM does
    assert [p.token for p in served[:-1]] == [t.text for t in local.tokens]
    assert served[-1].token == "<|im_end|>"
    for position, token in zip(served, local.tokens):
        assert position.logprob == pytest.approx(token.logprob, abs=1e-4)
        assert [a.logprob for a in position.top_logprobs] == pytest.approx(
            [a.logprob for a in token.top], abs=1e-4)
    _, tokenizer = reference.load(chat_path)
    expected = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True,
                                             tokenize=True, return_dict=False)
    assert chat.usage.prompt_tokens == len(expected)


def test_chat_completion_takes_constraints(client, chat_path):
    chat = client.chat.completions.create(
        model="tiny-chat", messages=MESSAGES, max_tokens=8, temperature=0,
        extra_body={"structured_outputs": {"choice": [" Paris", " Berlin"]}})
    local = lmql_nb.model(f"local:{chat_path}").generate_sync(
        MESSAGES, choices=[" Paris", " Berlin"], max_tokens=8, cache=False)
    assert chat.choices[0].message.content == local


def test_chat_completion_takes_penalties(client, chat_path):
    """OpenAI's penalties and vLLM's repetition_penalty on chat completions: the
    in-process chat's text (the template's prompt counted by repetition_penalty)."""
    chat = client.chat.completions.create(
        model="tiny-chat", messages=MESSAGES, max_tokens=16, temperature=0,
        frequency_penalty=1.0, presence_penalty=0.5,
        extra_body={"repetition_penalty": 1.4})
    llm = lmql_nb.model(f"local:{chat_path}")
    local = llm.generate_sync(MESSAGES, max_tokens=16, cache=False, frequency_penalty=1.0,
                              presence_penalty=0.5, repetition_penalty=1.4)
    assert chat.choices[0].message.content == local
    assert local != llm.generate_sync(MESSAGES, max_tokens=16, cache=False)


def test_the_openai_backend_sends_conversations_to_chat_completions(chat_server, chat_path):
    remote = lmql_nb.model("openai/tiny-chat", base_url=chat_server.base_url, api_key="none")
    local = lmql_nb.model(f"local:{chat_path}")
    assert remote.generate_sync(MESSAGES, max_tokens=12, cache=False) == \
        local.generate_sync(MESSAGES, max_tokens=12, cache=False)
    # and scores replies as in process (tests/server/test_chat_scoring_served.py)
    assert remote.score_sync(MESSAGES, [" Paris"], cache=False).token_scores[0] == \
        pytest.approx(local.score_sync(MESSAGES, [" Paris"], cache=False).token_scores[0],
                      abs=1e-4)


def test_token_details_carry_the_tokens_as_in_process(client, chat_server, chat_path):
    """This server's `token_details` extension: asked for, each generated position of a
    chat answer (and of a completion) carries its TokenInfo, ids, `blocked` alternatives
    and constrained numbers, equal to in-process; not asked for, the body is OpenAI's
    shape alone; a wrong value is a 400 naming the field. lmql_nb's client asks for it."""
    import httpx

    local = lmql_nb.model(f"local:{chat_path}").generate_sync(
        MESSAGES, choices=[" Paris", " Berlin"], max_tokens=8, return_details=True,
        top_logprobs=3, cache=False)
    chat = client.chat.completions.create(
        model="tiny-chat", messages=MESSAGES, max_tokens=8, temperature=0, logprobs=True,
        top_logprobs=3, extra_body={"structured_outputs": {"choice": [" Paris", " Berlin"]},
                                    "token_details": True})
    served = chat.choices[0].logprobs.content[:len(local.tokens)]
    details = [p.model_extra["token_details"] for p in served]
    assert [d["token_id"] for d in details] == [t.token_id for t in local.tokens]
    assert [[a["blocked"] for a in d["top"]] for d in details] == \
        [[a.blocked for a in t.top] for t in local.tokens]
    assert any(a.blocked for t in local.tokens for a in t.top)
    assert [d["constrained_logprob"] for d in details] == pytest.approx(
        [t.constrained_logprob for t in local.tokens], abs=1e-4)

    plain = client.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=4,
                                           temperature=0, logprobs=True, top_logprobs=2)
    assert all("token_details" not in (p.model_extra or {})
               for p in plain.choices[0].logprobs.content)
    completion = client.completions.create(model="tiny-chat", prompt="Hello", max_tokens=3,
                                           temperature=0, logprobs=2,
                                           extra_body={"token_details": True})
    logprobs = completion.choices[0].logprobs
    assert len(logprobs.model_extra["token_details"]) == len(logprobs.tokens)
    bad = httpx.post(f"{chat_server.base_url}/completions", timeout=60, json={
        "model": "tiny-chat", "prompt": "Hi", "max_tokens": 1, "token_details": "yes"})
    assert bad.status_code == 400 and "token_details" in bad.json()["error"]["message"]

    remote = lmql_nb.model("openai/tiny-chat", base_url=chat_server.base_url, api_key="none")
    got = remote.generate_sync(MESSAGES, choices=[" Paris", " Berlin"], max_tokens=8,
                               return_details=True, top_logprobs=3, cache=False)
    assert [(t.token_id, t.text) for t in got.tokens] == \
        [(t.token_id, t.text) for t in local.tokens]
    assert [[a.blocked for a in t.top] for t in got.tokens] == \
        [[a.blocked for a in t.top] for t in local.tokens]
    assert [t.constrained_logprob for t in got.tokens] == pytest.approx(
        [t.constrained_logprob for t in local.tokens], abs=1e-4)
