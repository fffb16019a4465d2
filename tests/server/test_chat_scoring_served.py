"""Preference scoring over HTTP: `score(messages, replies)` on `python -m lmql_nb serve`
through the openai backend, which renders the conversation with the server's `/tokenize`
(vLLM's chat form: `messages`) and echoes the token ids. The numbers must equal
in-process scoring of the same conversation and transformers' forward pass by hand; the
ids transformers' `apply_chat_template` and `encode` give."""

from __future__ import annotations

import httpx
import pytest

import lmql_nb
from lmql_nb.errors import ScoringNotSupported

import reference
from chat_models import CHATML, MESSAGES, hf_prompt, hf_reply_logprob

REPLIES = ["Paris", " Lyon is", "Paris."]

#: ChatML whose generation prompt opens the assistant's turn with text that an
#: assistant's message written by the template does not carry: the prompt's ids are not
#: the beginning of the conversation's
PREFILLED = CHATML.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\nA:'")


@pytest.fixture(scope="module")
def chat_server(server_process, chat_path):
    server = server_process(f"local:{chat_path}", "tiny-chat", api_key=None,
                            extra=("--trust-request-chat-template",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(chat_server):
    return lmql_nb.model("openai/tiny-chat", base_url=chat_server.base_url, api_key="none")


def _tokenize(server, **body) -> list[int]:
    answer = httpx.post(f"{server.root}/tokenize", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["tokens"]


def test_tokenize_renders_messages_as_transformers(chat_server, chat_path):
    """vLLM's chat form of /tokenize: the same ids as transformers' apply_chat_template,
    with the generation prompt, a finished assistant turn, and a continued one."""
    _, tokenizer = reference.load(chat_path)
    answered = MESSAGES + [{"role": "assistant", "content": "Paris"}]

    def hf(messages, **kwargs) -> list[int]:
        return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False,
                                                  **kwargs))

    assert _tokenize(chat_server, messages=MESSAGES) == hf_prompt(chat_path, MESSAGES)
    assert _tokenize(chat_server, messages=answered, add_generation_prompt=False) == \
        hf(answered)
    assert _tokenize(chat_server, messages=answered, add_generation_prompt=False,
                     continue_final_message=True) == hf(answered, continue_final_message=True)
    assert _tokenize(chat_server, messages=MESSAGES, add_special_tokens=True) == \
        [tokenizer.bos_token_id] + hf_prompt(chat_path, MESSAGES)


@pytest.mark.parametrize("body, field", [
    ({"messages": MESSAGES, "prompt": "a"}, "prompt"),
    ({"messages": MESSAGES, "continue_final_message": True}, "continue_final_message"),
    ({"messages": MESSAGES, "continue_final_message": True,
      "add_generation_prompt": False}, "continue_final_message"),
    ({"messages": MESSAGES, "stream": True}, "stream"),
    ({"messages": "hi"}, "messages"),
])
def test_tokenize_refuses_bad_chat_bodies(chat_server, body, field):
    answer = httpx.post(f"{chat_server.root}/tokenize", json=body, timeout=60)
    assert answer.status_code == 400, answer.text
    assert field in answer.text


def test_served_reply_scores_equal_in_process_and_transformers(remote, chat_path):
    """Each reply: its text tokenised alone, then `<|im_end|>`, after the generation
    prompt; the scores those of transformers' forward pass and of in-process scoring."""
    _, tokenizer = reference.load(chat_path)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    served = remote.score_sync(MESSAGES, REPLIES, cache=False)
    local = lmql_nb.model(f"local:{chat_path}").score_sync(MESSAGES, REPLIES, cache=False)
    for i, reply in enumerate(REPLIES):
        expected_ids = tokenizer.encode(reply, add_special_tokens=False) + [end]
        assert list(served.token_ids[i]) == expected_ids
        assert list(local.token_ids[i]) == expected_ids
        assert list(served.token_scores[i]) == pytest.approx(list(local.token_scores[i]), abs=1e-4)
        assert sum(served.token_scores[i]) == pytest.approx(
            hf_reply_logprob(chat_path, MESSAGES, reply), abs=1e-4)
    assert list(served.messages) == MESSAGES


def test_served_continuation_scores_equal_in_process(remote, chat_path):
    """After an assistant's message, a value continues it (joint tokenisation, no end of
    turn), as in process; the total equals transformers' forward pass over
    apply_chat_template(continue_final_message=True) of the continued message."""
    _, tokenizer = reference.load(chat_path)
    messages = MESSAGES + [{"role": "assistant", "content": "It is"}]
    values = [" Paris", " Lyon"]
    served = remote.score_sync(messages, values, cache=False)
    local = lmql_nb.model(f"local:{chat_path}").score_sync(messages, values, cache=False)
    for i, value in enumerate(values):
        assert list(served.token_ids[i]) == list(local.token_ids[i])
        assert list(served.token_scores[i]) == pytest.approx(list(local.token_scores[i]), abs=1e-4)
        joint = list(tokenizer.apply_chat_template(
            MESSAGES + [{"role": "assistant", "content": "It is" + value}], tokenize=True,
            return_dict=False, continue_final_message=True))
        count = len(served.token_ids[i])
        assert joint[-count:] == list(served.token_ids[i])
        logprobs = reference.token_logprobs(chat_path, joint)
        expected = sum(float(logprobs[len(joint) - count + j - 1, t])
                       for j, t in enumerate(joint[-count:]))
        assert sum(served.token_scores[i]) == pytest.approx(expected, abs=1e-4)


def test_served_score_many_scores_conversations(remote, chat_path):
    other = [{"role": "user", "content": "Name a colour."}]
    served = remote.score_many_sync([MESSAGES, other], REPLIES, cache=False, progress=False)
    for index, messages in enumerate([MESSAGES, other]):
        row = served[index]
        for i, reply in enumerate(REPLIES):
            assert sum(row.token_scores[i]) == pytest.approx(
                hf_reply_logprob(chat_path, messages, reply), abs=1e-4)


def test_a_template_whose_prompt_is_not_the_conversations_beginning_is_refused(chat_server):
    """`chat_template=` is sent along; with a generation prompt the template's assistant
    turns do not begin with, where a reply starts is unknown: a clear error."""
    bad = lmql_nb.model("openai/tiny-chat", base_url=chat_server.base_url, api_key="none",
                        chat_template=PREFILLED)
    with pytest.raises(ScoringNotSupported, match="generation prompt") as error:
        bad.score_sync(MESSAGES, ["Paris"], cache=False)
    assert "local:" in str(error.value) and chat_server.base_url in str(error.value)


def test_openai_refuses_conversation_scoring_and_says_what_works():
    official = lmql_nb.model("openai/gpt-4o-mini", api_key="sk-test-not-used")
    with pytest.raises(ScoringNotSupported, match="vLLM") as error:
        official.score_sync(MESSAGES, ["Paris"], cache=False)
    message = str(error.value)
    assert "openai" in message and "lmql_nb serve" in message and "local:" in message
    assert "sk-test" not in message
