"""Chat programs: `{:system}`/`{:user}`/`{:assistant}` tags rendered through the model's
chat template, `await input()` and `@message`, checked against transformers by hand."""

from __future__ import annotations

import numpy as np
import pytest

import lmql_nb
from lmql_nb.lib.chat import message  # noqa: F401 (the programs' @message)

import reference
from chat_models import MESSAGES, hf_greedy


@pytest.fixture(scope="module")
def chat_llm(chat_path):
    return lmql_nb.model(f"local:{chat_path}")


CHAT = '''argmax
    "{:system} You answer in one word."
    while True:
        "{:user} {await input()}"
        "{:assistant} [@message ANSWER]" where len(TOKENS(ANSWER)) < 6
'''


def test_a_chat_loop_renders_the_template_and_ends_with_the_inputs(chat_llm, chat_path):
    program = lmql_nb.query(CHAT, model=chat_llm, is_async=False)
    result = program(inputs=["The capital of France is", "And of Germany?"], cache=False)
    conversation = result.trace.conversation()
    assert [m["role"] for m in conversation] == ["system", "user", "assistant", "user",
                                                 "assistant"]
    assert conversation[:2] == MESSAGES and conversation[3]["content"] == "And of Germany?"
    holes = result.trace.holes()
    assert all(h.message for h in holes)  # @message marks what the user sees
    _, tokenizer = reference.load(chat_path)
    for turn, hole in zip((2, 4), holes):
        ids = tokenizer.apply_chat_template(conversation[:turn], add_generation_prompt=True,
                                            tokenize=True, return_dict=False)
        assert [t.token_id for t in hole.tokens] == hf_greedy(chat_path, ids, 5)


def test_a_distribution_inside_the_assistant_turn(chat_llm, chat_path):
    program = lmql_nb.query('''argmax
    "{:user} The capital of France is"
    "{:assistant} It is[CITY]" distribution CITY in [" Paris", " Berlin"]
''', model=chat_llm, is_async=False)
    result = program(cache=False)
    _, tokenizer = reference.load(chat_path)
    sums = []
    for value in (" Paris", " Berlin"):
        def ids(content: str) -> list[int]:
            return tokenizer.apply_chat_template(
                [MESSAGES[1], {"role": "assistant", "content": content}],
                continue_final_message=True, tokenize=True, return_dict=False)
        context, joint = ids("It is"), ids("It is" + value)
        shared = next((i for i, (a, b) in enumerate(zip(context, joint)) if a != b),
                      len(context))
        table = reference.token_logprobs(chat_path, joint)
        sums.append(sum(float(table[i - 1, joint[i]]) for i in range(shared, len(joint))))
    expected = np.exp(sums) / np.exp(sums).sum()
    np.testing.assert_allclose(result.variables["P(CITY)"][0][1], expected[0], atol=1e-4)


@pytest.mark.parametrize("source, words", [
    ('"{:user} Hi [X]"', r"\[X\] is in a \{:user\} turn"),
    ('"Hello "\n    "{:user} Hi"\n    "{:assistant} [X]"', "text before its first chat tag"),
    ('"{:user} {await input()}"\n    "{:assistant} [X]"', "inputs="),
])
def test_chat_programs_refuse_clearly(chat_llm, source, words):
    program = lmql_nb.query(f"argmax\n    {source}\n", model=chat_llm, is_async=False)
    with pytest.raises(ValueError, match=words):
        program(cache=False)


def test_an_unknown_tag_is_a_compile_error(chat_llm):
    with pytest.raises(SyntaxError, match=r"accepted: \{:system\}"):
        lmql_nb.query('argmax\n    "{:robot} Hi [X]"\n', model=chat_llm)
