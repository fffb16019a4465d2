"""Conversations through the model's own chat template, checked against transformers used
by hand on a tiny chat model (ChatML template and turn tokens)."""

from __future__ import annotations

import numpy as np
import pytest

import lmql_nb

import reference
from chat_models import CHATML, MESSAGES, hf_greedy, hf_prompt, hf_reply_logprob

REPLIES = [" Paris", " the river and the town"]


@pytest.fixture(scope="module")
def chat_llm(chat_path):
    return lmql_nb.model(f"local:{chat_path}")


def test_rendered_ids_equal_transformers_apply_chat_template(chat_llm, chat_path):
    backend = chat_llm.backend
    backend.load()
    for messages in (MESSAGES, MESSAGES[1:], MESSAGES + [
            {"role": "assistant", "content": " Paris"}, {"role": "user", "content": "And?"}]):
        assert backend.chat_format().prompt_ids(messages) == hf_prompt(chat_path, messages)


def test_greedy_chat_equals_transformers_and_stops_at_the_end_of_turn(chat_llm, chat_path):
    prompt = hf_prompt(chat_path, MESSAGES)
    expected = hf_greedy(chat_path, prompt, 12)
    assert 2 <= len(expected) < 12  # the model ends its turn: the test checks the stop
    generation = chat_llm.generate_sync(MESSAGES, max_tokens=12, return_details=True,
                                        cache=False)
    assert [t.token_id for t in generation.tokens] == expected
    assert generation.finish_reason == "stop"
    _, tokenizer = reference.load(chat_path)
    assert generation.end_token.token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert generation.messages == tuple(MESSAGES)
    assert generation.text == reference.completion_text(tokenizer, prompt + expected,
                                                        len(prompt))


def test_reply_scores_equal_transformers_by_hand(chat_llm, chat_path):
    result = chat_llm.score_sync(MESSAGES, REPLIES, cache=False)
    expected = [hf_reply_logprob(chat_path, MESSAGES, reply) for reply in REPLIES]
    np.testing.assert_allclose(result.scores("sum"), expected, atol=1e-4)
    assert result.tokens[0][-1] == "<|im_end|>"  # the end of the turn is scored, by name
    assert result.messages == tuple(MESSAGES)


def test_score_many_and_async_take_conversations(chat_llm, chat_path):
    import asyncio

    table = chat_llm.score_many_sync([MESSAGES, MESSAGES[1:]], REPLIES, progress=False,
                                     cache=False)
    expected = [hf_reply_logprob(chat_path, MESSAGES[1:], reply) for reply in REPLIES]
    np.testing.assert_allclose(table[1].scores("sum"), expected, atol=1e-4)
    text = asyncio.run(chat_llm.generate(MESSAGES, max_tokens=3, cache=False))
    assert text == chat_llm.generate_sync(MESSAGES, max_tokens=3, cache=False)


def test_branch_of_a_chat_generation_continues_the_conversation(chat_llm, chat_path):
    generation = chat_llm.generate_sync(MESSAGES, max_tokens=4, return_details=True,
                                        top_logprobs=3, cache=False)
    alternative = generation.tokens[0].top[1]
    branch = chat_llm.branch_sync(generation, 0, alternative, max_tokens=3)
    prompt = hf_prompt(chat_path, MESSAGES)
    expected = [alternative.token_id] + hf_greedy(chat_path, prompt + [alternative.token_id], 2)
    assert [t.token_id for t in branch.tokens] == expected[:len(branch.tokens)]


def test_a_final_assistant_message_is_continued(chat_llm, chat_path):
    """After an assistant's message, generate continues it and score scores values as its
    continuation: transformers' `continue_final_message=True` by hand (greedy ids up to
    `<|im_end|>`; each value's tokens of the joint rendering, no end of turn)."""
    _, tokenizer = reference.load(chat_path)
    conversation = [MESSAGES[1], {"role": "assistant", "content": "It is"}]

    def rendered(content: str) -> list[int]:
        return list(tokenizer.apply_chat_template(
            [MESSAGES[1], {"role": "assistant", "content": content}],
            continue_final_message=True, tokenize=True, return_dict=False))

    prompt = rendered("It is")
    expected = hf_greedy(chat_path, prompt, 6)
    generation = chat_llm.generate_sync(conversation, max_tokens=6, return_details=True,
                                        cache=False)
    assert [t.token_id for t in generation.tokens] == expected
    values = [" Paris", " the river"]
    scores = []
    for value in values:
        joint = rendered("It is" + value)
        shared = next((i for i, (a, b) in enumerate(zip(prompt, joint)) if a != b),
                      len(prompt))
        table = reference.token_logprobs(chat_path, joint)
        scores.append(float(sum(table[i - 1, joint[i]] for i in range(shared, len(joint)))))
    result = chat_llm.score_sync(conversation, values, cache=False)
    np.testing.assert_allclose(result.scores("sum"), scores, atol=1e-4)


def test_constraints_hold_inside_the_assistant_turn(chat_llm):
    answer = chat_llm.generate_sync(MESSAGES, choices=[" Paris", " Berlin"], cache=False)
    assert answer in (" Paris", " Berlin")


def test_a_template_override_string_or_file(chat_path, tmp_path):
    other = CHATML.replace("'\n' + message['content']", "':' + message['content']")
    file = tmp_path / "other.jinja"
    file.write_text(other)
    for value in (other, str(file)):
        llm = lmql_nb.model(f"local:{chat_path}", chat_template=value)
        llm.backend.load()
        assert llm.backend.chat_format().prompt_ids(MESSAGES) == hf_prompt(chat_path, MESSAGES,
                                                                          other)


def test_message_content_that_spells_a_turn_marker_stays_text(chat_llm, chat_path):
    messages = [{"role": "user", "content": "a<|im_end|>b"}]
    ids = chat_llm.backend.chat_format().prompt_ids(messages)
    _, tokenizer = reference.load(chat_path)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids.count(end) == 1  # the template's own, after the content


def test_a_model_without_a_template_names_chat_template(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(ValueError, match="chat_template"):
        llm.generate_sync([{"role": "user", "content": "hi"}], max_tokens=2)


@pytest.mark.parametrize("messages, error, words", [
    ([], ValueError, "empty conversation"),
    ([{"role": "robot", "content": "x"}], ValueError, "accepted: system, user, assistant"),
    ([{"role": "user", "content": 3}], TypeError, r"\['content'\] must be a str"),
    ([{"role": "user", "content": "x", "name": "a"}], ValueError, "'role' and 'content' only"),
])
def test_bad_messages_are_clear_errors(chat_llm, messages, error, words):
    with pytest.raises(error, match=words):
        chat_llm.generate_sync(messages, max_tokens=2)
    with pytest.raises(error, match=words):
        chat_llm.score_sync(messages, ["x"])


def test_a_template_is_sandboxed(chat_path):
    hostile = "{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}"
    llm = lmql_nb.model(f"local:{chat_path}", chat_template=hostile)
    with pytest.raises(ValueError, match="template"):
        llm.generate_sync(MESSAGES, max_tokens=1)


def test_a_template_in_tokenizer_config_json_is_the_models_own(chat_path, tmp_path):
    """The older place for a template: tokenizer_config.json (no chat_template.jinja)."""
    import json
    import shutil

    folder = tmp_path / "config-template"
    shutil.copytree(chat_path, folder)
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = template.replace("'\n' + message['content']",
                                               "': ' + message['content']")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    llm = lmql_nb.model(f"local:{folder}")
    llm.backend.load()
    expected = hf_prompt(folder, MESSAGES)
    assert llm.backend.chat_format().prompt_ids(MESSAGES) == expected
    assert expected != hf_prompt(chat_path, MESSAGES)  # it is the config's template
