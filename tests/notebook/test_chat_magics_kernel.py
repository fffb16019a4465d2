"""Chat in a real kernel: `%%lmql_generate --system`, `%lmql_score --user`, and `%%lmql`'s
`await input()` answered through the kernel's stdin channel (the input box a notebook
shows), on the tiny chat model. Expected values come from the Python API in this process."""

from __future__ import annotations

import json

import pytest

import lmql_nb

from chat_models import MESSAGES, hf_greedy, hf_prompt, hf_reply_logprob
from nb_helpers import error, execute_cells, stdout

SYSTEM = MESSAGES[0]["content"]
#: a conversation in a notebook variable, given to the magics as `{chat}`
CHAT = [*MESSAGES, {"role": "assistant", "content": " Paris"},
        {"role": "user", "content": "And of Germany?"}]
REPLIES = [" Paris", " the river and the town"]
PROGRAM = '''argmax
    "{:system} You answer in one word."
    while True:
        "{:user} {await input()}"
        "{:assistant} [ANSWER]" where len(TOKENS(ANSWER)) < 5
'''


@pytest.fixture(scope="module")
def cells(chat_path, tmp_path_factory):
    model = f"local:{chat_path}"
    notebook = execute_cells([
        "%load_ext lmql_nb",
        f'%%lmql_generate -m {model} --system "{SYSTEM}" --max-tokens 8 -o out --format text\n'
        f"{MESSAGES[1]['content']}",
        "print(repr(out))",
        f'%lmql_score -m {model} --system "{SYSTEM}" --user "{MESSAGES[1]["content"]}" '
        + " ".join(f'"{r}"' for r in REPLIES) + " -o s",
        "import json\nprint(json.dumps([s.continuations, list(s.scores())]))",
        f"%%lmql -m {model}\n{PROGRAM}",  # no --inputs, and nbclient takes no input
        "said = ['The capital of France is']\n",
        f"%%lmql -m {model} --inputs said -o result\n{PROGRAM}",
        "print(json.dumps(result.trace.conversation()))",
        f"chat = {CHAT!r}",
        f"%%lmql_generate -m {model} --max-tokens 8 -o again --format text\n{{chat}}",
        "print(repr(again))",
        f'%lmql_score -m {model} {{chat}} ' + " ".join(f'"{r}"' for r in REPLIES) + " -o s2",
        "print(json.dumps([s2.continuations, list(s2.scores())]))",
        f'%%lmql_generate -m {model} --system "{SYSTEM}"\n{{chat}}',
    ], tmp_path_factory.mktemp("chat-nb"), timeout=600)
    return notebook.cells


def test_generate_with_system_makes_the_cell_the_users_turn(cells, chat_path):
    assert error(cells[1]) is None, error(cells[1])
    expected = lmql_nb.model(f"local:{chat_path}").generate_sync(MESSAGES, max_tokens=8,
                                                                 cache=False)
    assert stdout(cells[2]).strip() == repr(expected)


def test_score_with_user_scores_each_argument_as_a_reply(cells, chat_path):
    assert error(cells[3]) is None, error(cells[3])
    values, scores = json.loads(stdout(cells[4]))
    expected = lmql_nb.model(f"local:{chat_path}").score_sync(MESSAGES, REPLIES, cache=False)
    assert values == REPLIES
    assert scores == pytest.approx(list(expected.scores()), abs=1e-6)


def test_a_conversation_variable_is_the_magics_prompt(cells, chat_path):
    """`{chat}` naming a list of messages is that conversation, rendered through the
    model's template: greedy ids and reply scores equal transformers by hand on
    `apply_chat_template(chat, add_generation_prompt=True)` (not the list's repr)."""
    import reference

    for cell in cells[9:14]:
        assert error(cell) is None, error(cell)
    _, tokenizer = reference.load(chat_path)
    prompt = hf_prompt(chat_path, CHAT)
    expected = hf_greedy(chat_path, prompt, 8)
    assert stdout(cells[11]).strip() == repr(reference.completion_text(
        tokenizer, prompt + expected, len(prompt)))
    values, scores = json.loads(stdout(cells[13]))
    assert values == REPLIES
    assert scores == pytest.approx([hf_reply_logprob(chat_path, CHAT, r) for r in REPLIES],
                                   abs=1e-4)
    assert "the cell is a conversation already" in str(error(cells[14]))


def test_input_without_an_input_box_names_inputs(cells):
    assert "--inputs" in str(error(cells[5]))


def test_inputs_feed_the_chat_and_it_ends_when_they_run_out(cells):
    assert error(cells[7]) is None, error(cells[7])
    conversation = json.loads(stdout(cells[8]))
    assert [m["role"] for m in conversation] == ["system", "user", "assistant"]
    assert conversation[1]["content"] == "The capital of France is"


def test_await_input_asks_through_the_kernels_input_box(chat_path, tmp_path):
    """A real kernel, a real stdin channel: the program's question reaches the frontend as
    an input_request, the answer becomes the user's turn, an empty answer ends the chat."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive("%load_ext lmql_nb", timeout=120)
        answers = iter(["The capital of France is", ""])
        prompts: list[str] = []
        outputs: list[str] = []

        def on_stdin(message: dict) -> None:
            prompts.append(message["content"]["prompt"])
            client.input(next(answers))

        def on_output(message: dict) -> None:
            if message["msg_type"] == "stream":
                outputs.append(message["content"]["text"])

        reply = client.execute_interactive(
            f"%%lmql -m local:{chat_path} -o result\n{PROGRAM}", timeout=300,
            allow_stdin=True, stdin_hook=on_stdin, output_hook=on_output)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert prompts == ["user: ", "user: "]
        outputs.clear()
        client.execute_interactive("import json\nprint(json.dumps("
                                   "result.trace.conversation()))", timeout=60,
                                   output_hook=on_output)
        conversation = json.loads("".join(outputs))
        assert [m["role"] for m in conversation] == ["system", "user", "assistant"]
        assert conversation[1]["content"] == "The capital of France is"
    finally:
        try:
            client.stop_channels()
        finally:
            manager.shutdown_kernel(now=True)

