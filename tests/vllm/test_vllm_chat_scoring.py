"""Preference scoring on a real vLLM server: `score(messages, replies)` renders the
conversation with vLLM's `/tokenize` (`messages`, the template lmql_nb sends) and echoes
the token ids on /v1/completions; the numbers equal transformers' forward pass by hand
and in-process scoring (issue 26)."""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.tokenization.chat import GEMMA_TEMPLATE

import reference

pytestmark = pytest.mark.timeout(600)

MESSAGES = [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "What is the capital of France?"}]
REPLIES = ["Paris", "The capital of France is Paris.", "Berlin"]


@pytest.fixture(scope="module")
def chat(vllm_server):
    """lmql_nb's client on vLLM with Gemma's turn format sent along (the embedded model
    carries no template; the tier's server trusts request templates)."""
    return lmql_nb.model("openai/gemma", base_url=vllm_server.base_url, timeout=120,
                         chat_template=GEMMA_TEMPLATE)


def test_reply_scores_on_vllm_equal_transformers_and_in_process(chat, gemma_folder, local):
    """Each reply: transformers' apply_chat_template(add_generation_prompt=True) ids, then
    the reply's own tokens and `<end_of_turn>`, scored by one forward pass by hand."""
    _, tokenizer = reference.load(gemma_folder)
    prompt = list(tokenizer.apply_chat_template(MESSAGES, chat_template=GEMMA_TEMPLATE,
                                                add_generation_prompt=True, tokenize=True,
                                                return_dict=False))
    end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    served = chat.score_sync(MESSAGES, REPLIES, cache=False)
    in_process = local.score_sync(MESSAGES, REPLIES, cache=False)
    for i, reply in enumerate(REPLIES):
        value = tokenizer.encode(reply, add_special_tokens=False) + [end]
        assert list(served.token_ids[i]) == value
        logprobs = reference.token_logprobs(gemma_folder, prompt + value)
        expected = [float(logprobs[len(prompt) + j - 1, t]) for j, t in enumerate(value)]
        assert list(served.token_scores[i]) == pytest.approx(expected, abs=1e-4)
        assert list(served.token_scores[i]) == pytest.approx(
            list(in_process.token_scores[i]), abs=1e-4)
    assert served.scores().argmax() == in_process.scores().argmax()


def test_continuation_scores_on_vllm_equal_in_process(chat, local):
    """After an assistant's message, vLLM's continue_final_message rendering gives the
    in-process split: the values continue the message, jointly tokenised."""
    messages = MESSAGES + [{"role": "assistant", "content": "It is"}]
    values = [" Paris", " Berlin"]
    served = chat.score_sync(messages, values, cache=False)
    in_process = local.score_sync(messages, values, cache=False)
    for i in range(len(values)):
        assert list(served.token_ids[i]) == list(in_process.token_ids[i])
        assert list(served.token_scores[i]) == pytest.approx(
            list(in_process.token_scores[i]), abs=1e-4)
