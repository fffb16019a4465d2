"""The five defects a user met against a real vLLM server, each fixed (issue 27)."""

from __future__ import annotations

import logging

import httpx
import pytest

import lmql_nb
from lmql_nb.errors import BackendError
from lmql_nb.tokenization.chat import GEMMA_TEMPLATE

pytestmark = pytest.mark.timeout(600)

PROMPT = "The capital of France is"
CHOICES = [" Paris", " Berlin", " Rome"]



def test_beam_search_with_a_constraint_is_refused_naming_vllm(remote, vllm_server):
    for constraint in ({"choices": CHOICES}, {"regex": r" [A-Z][a-z]+"},
                       {"stops_before": ["."]}):
        with pytest.raises(ValueError, match=r"decoder='beam' with a constraint .* refused "
                                             r"for vLLM at http://127\.0\.0\.1:\d+/v1"):
            remote.generate_sync(PROMPT, max_tokens=6, decoder="beam", n=2, cache=False,
                                 **constraint)


def test_why_beam_with_a_constraint_is_refused_vllm_ignores_it(vllm_server):
    """vLLM itself, asked directly: its beam search drops structured_outputs."""
    body = {"model": "gemma", "prompt": PROMPT, "max_tokens": 4, "n": 2,
            "temperature": 0.0, "use_beam_search": True,
            "structured_outputs": {"choice": CHOICES}}
    answer = httpx.post(f"{vllm_server.base_url}/completions", json=body, timeout=300).json()
    texts = [choice["text"] for choice in answer["choices"]]
    assert any(text not in CHOICES for text in texts)


def test_constrained_token_numbers_are_the_models_own_as_in_process(remote, local):
    got = remote.generate_sync(PROMPT, max_tokens=8, return_details=True, cache=False,
                               choices=CHOICES, top_logprobs=5)
    expected = local.generate_sync(PROMPT, max_tokens=8, return_details=True, cache=False,
                                   choices=CHOICES, top_logprobs=5)
    assert got.text == expected.text == " Paris"
    for g, e in zip(got.tokens, expected.tokens):
        assert g.token_id == e.token_id
        assert g.logprob == pytest.approx(e.logprob, abs=1e-4)  # not vLLM's post-mask value
        assert g.logprob < -1.0  # the model's own: " Paris" is not its first choice
        assert g.constrained_logprob == pytest.approx(e.constrained_logprob, abs=1e-4)
        assert g.rank == e.rank
        assert [(a.text, a.blocked) for a in g.top] == [(a.text, a.blocked) for a in e.top]
        assert [a.logprob for a in g.top] == pytest.approx([a.logprob for a in e.top],
                                                           abs=1e-4)
        assert all(a.logprob > -9999 for a in g.top)  # never vLLM's stand-in for -inf
        assert [a.text for a in g.allowed] == [a.text for a in e.allowed]
        assert [a.logprob for a in g.allowed] == pytest.approx(
            [a.logprob for a in e.allowed], abs=1e-4)
    assert any(a.blocked for t in got.tokens for a in t.top)


def test_constrained_numbers_reach_on_token_too(remote):
    seen = []
    got = remote.generate_sync(PROMPT, max_tokens=8, return_details=True, cache=False,
                               regex=r" [A-Z][a-z]+", on_token=lambda i, t: seen.append(t))
    assert seen == list(got.tokens)
    assert all(t.constrained_logprob is not None for t in seen)


def test_a_one_character_api_key_leaves_error_messages_readable(vllm_server):
    # vLLM started without --api-key accepts any key; its message has many "x"s and "ma"s
    for key in ("x", "ma"):
        llm = lmql_nb.model("openai/gemma", base_url=vllm_server.base_url, api_key=key,
                            max_retries=0)
        with pytest.raises(BackendError) as caught:
            llm.generate_sync(PROMPT, max_tokens=100000, cache=False)
        assert "max_tokens=100000 cannot be greater than max_model_len" in str(caught.value)
        assert "<hidden>" not in str(caught.value)


def test_without_the_tokenizer_info_endpoint_the_tokenizer_falls_back(remote, local, caplog):
    tokenizer = remote.get_tokenizer()
    with caplog.at_level(logging.WARNING, logger="lmql_nb.backends.openai"):
        info = tokenizer.info()
    assert info == {}
    assert "--enable-tokenizer-info-endpoint" in caplog.text
    assert "falls back to /tokenize" in caplog.text
    expected = local.get_tokenizer()
    assert tokenizer.bos_token_id == expected.bos_token_id  # found through /tokenize
    assert tokenizer.start_token_id == expected.bos_token_id
    assert tokenizer.eos_token_id is None  # unknown without /tokenizer_info, said so
    assert tokenizer.encode(PROMPT) == expected.encode(PROMPT)


def test_chat_without_a_template_names_the_template(vllm_server):
    chat = lmql_nb.model("openai/gemma", base_url=vllm_server.base_url, chat=True,
                         max_retries=0)
    with pytest.raises(BackendError, match=r"has no chat template: pass one as "
                                           r"lmql_nb\.model\(\.\.\., chat_template="):
        chat.generate_sync("Hello", max_tokens=4, cache=False)


def test_chat_with_a_template_sent_with_the_request_equals_in_process_chat(vllm_server,
                                                                          local):
    """vLLM renders the conversation with the template lmql_nb sends (Gemma's turn
    format, built into lmql_nb for the embedded model) exactly as lmql_nb's in-process
    chat renders it."""
    chat = lmql_nb.model("openai/gemma", base_url=vllm_server.base_url, chat=True,
                         chat_template=GEMMA_TEMPLATE)
    question = "What is the capital of France?"
    got = chat.generate_sync(question, max_tokens=10, return_details=True, cache=False)
    expected = local.generate_sync([{"role": "user", "content": question}], max_tokens=10,
                                   return_details=True, cache=False)
    assert got.text == expected.text
    assert [t.logprob for t in got.tokens] == pytest.approx(
        [t.logprob for t in expected.tokens], abs=1e-4)
