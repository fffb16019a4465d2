"""`/v1/chat/completions` of `python -m lmql_nb serve` through the openai SDK: the same
rendering path as in process, so the same tokens and log-probabilities, and the same
tokens transformers' own `apply_chat_template` gives."""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.errors import ScoringNotSupported

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


def test_the_openai_backend_sends_conversations_to_chat_completions(chat_server, chat_path):
    remote = lmql_nb.model("openai/tiny-chat", base_url=chat_server.base_url, api_key="none")
    local = lmql_nb.model(f"local:{chat_path}")
    assert remote.generate_sync(MESSAGES, max_tokens=12, cache=False) == \
        local.generate_sync(MESSAGES, max_tokens=12, cache=False)
    with pytest.raises(ScoringNotSupported, match="openai"):
        remote.score_sync(MESSAGES, [" Paris"], cache=False)
