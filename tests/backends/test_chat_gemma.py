"""Chat on the embedded Gemma 3 270M, which carries no chat template: Gemma's own turn
format, checked against the turn text written by hand and transformers' forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference

pytestmark = pytest.mark.gemma

CHAT = [{"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"}]
#: Gemma's turn format, by hand: a system message opens the first user turn
TURNS = ("<bos><start_of_turn>user\nYou answer in one short sentence.\n\n"
         "What is the capital of France?<end_of_turn>\n<start_of_turn>model\n")
REPLIES = ["The capital of France is Paris.", "The capital of France is Berlin."]


@pytest.fixture(scope="module")
def folder(gemma):
    return gemma.backend.location()


def test_the_rendered_ids_are_gemmas_turns(gemma, folder):
    _, tokenizer = reference.load(folder)
    expected = tokenizer(TURNS, add_special_tokens=False).input_ids
    assert gemma.backend.chat_format().prompt_ids(CHAT) == expected
    assert tokenizer.convert_ids_to_tokens(expected[1:2]) == ["<start_of_turn>"]  # one token


def test_greedy_chat_equals_transformers_and_ends_at_end_of_turn(gemma, folder):
    model, tokenizer = reference.load(folder)
    end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    ids = tokenizer(TURNS, add_special_tokens=False).input_ids
    expected: list[int] = []
    with torch.inference_mode():
        for _ in range(12):
            token = int(model(torch.tensor([ids + expected])).logits[0, -1].argmax())
            if token in (end, tokenizer.eos_token_id):
                break
            expected.append(token)
    generation = gemma.generate_sync(CHAT, max_tokens=12, return_details=True, cache=False)
    assert [t.token_id for t in generation.tokens] == expected
    if len(expected) < 12:
        assert generation.end_token.token_id in (end, tokenizer.eos_token_id)


def test_reply_scores_equal_transformers_by_hand(gemma, folder):
    _, tokenizer = reference.load(folder)
    end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    prompt = tokenizer(TURNS, add_special_tokens=False).input_ids
    expected = []
    for reply in REPLIES:
        value = tokenizer(reply, add_special_tokens=False).input_ids + [end]
        table = reference.token_logprobs(folder, prompt + value)
        expected.append(float(sum(table[len(prompt) + i - 1, t] for i, t in enumerate(value))))
    result = gemma.score_sync(CHAT, REPLIES, cache=False)
    np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    assert result.argmax() == REPLIES[0]


#: the embedded Gemma is a base model: greedy decoding never picks `<end_of_turn>` (its
#: rank after every token of the conversations tried was 7,000 or worse), so the turn is
#: ended by choosing that token in `branch`, as a user does in the token view
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
QUESTION_TURNS = ("<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n"
                  "<start_of_turn>model\n")


def test_a_chat_turn_ends_at_end_of_turn(gemma, folder):
    """A conversation's generation that reaches `<end_of_turn>` stops there: finish
    reason "stop", the marker in `end_token` and never in the text, its log-probability
    transformers' by hand; any other token at that place continues the turn."""
    model, tokenizer = reference.load(folder)
    end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    prompt = tokenizer(QUESTION_TURNS, add_special_tokens=False).input_ids
    greedy: list[int] = []
    with torch.inference_mode():
        for _ in range(3):
            greedy.append(int(model(torch.tensor([prompt + greedy])).logits[0, -1].argmax()))
    assert end not in greedy
    generation = gemma.generate_sync(QUESTION, max_tokens=3, return_details=True, cache=False)
    assert [t.token_id for t in generation.tokens] == greedy
    ended = gemma.branch_sync(generation, 2, end, max_tokens=4, cache=False)
    assert ended.finish_reason == "stop"
    assert len(ended.tokens) == 0 and ended.end_token.token_id == end
    assert ended.text == "" and ended.end_token.text == ""
    assert list(ended.prefix_ids) == greedy[:2]
    table = reference.token_logprobs(folder, prompt + greedy[:2])
    assert abs(ended.end_token.logprob - float(table[-1, end])) < 1e-4
    other = gemma.branch_sync(generation, 2, greedy[2], max_tokens=3, cache=False)
    assert other.finish_reason == "length" and len(other.tokens) == 3
