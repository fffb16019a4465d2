"""`await input()` in `%%lmql`, answered in the trace view's input box, in a real kernel.

The test plays the browser's part over real channels: once the cell shows its trace view
it sends the view's comm messages exactly as the view's JavaScript does
(`model.send(...)`: a `comm_msg` on the shell channel, `{"method": "custom", "content":
...}` to the view's comm id), while the cell is still running. The expected conversation
comes from the same program run by the Python API with `inputs=` in this process.
"""

from __future__ import annotations

import json
import queue
import time

import pytest

import lmql_nb
from chat_models import CHAT_PROGRAM, CHAT_SAID

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, chat_path):
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3",
                                       cwd=str(tmp_path_factory.mktemp("chat-input")))
    try:
        client.execute_interactive("%load_ext lmql_nb\nimport json", timeout=120)
        yield manager, client
    finally:
        try:
            client.stop_channels()
        finally:
            manager.shutdown_kernel(now=True)


def _send(client, comm_id: str, content: dict) -> None:
    """What the view's `this.model.send(content)` puts on the wire."""
    client.shell_channel.send(client.session.msg(
        "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}}))


class Cell:
    """A cell being executed: its messages read from iopub until it is idle."""

    def __init__(self, client, code: str, timeout: float = 240):
        self.client, self.msg_id = client, client.execute(code)
        self.deadline = time.monotonic() + timeout
        self.view = None  # the trace view's comm id
        self.errors: list[str] = []
        self.printed: list[str] = []
        self.plain: list[str] = []  # text/plain of its displays and updates
        self.html: list[str] = []  # their static rendering (what a saved notebook keeps)
        self.idle = False

    def next(self) -> dict:
        """The next iopub message (any parent); the test fails on a hang."""
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise queue.Empty
            return self.client.get_iopub_msg(timeout=left)
        except queue.Empty:
            raise AssertionError(f"the kernel hung on {self.msg_id}") from None

    def questions(self):
        """Yield each question the view shows ({"id", "prompt"}) while the cell runs;
        record everything else."""
        while not self.idle:
            msg = self.next()
            content, kind = msg["content"], msg["msg_type"]
            if kind == "comm_msg" and content["comm_id"] == self.view:
                state = content["data"].get("state", {})
                if state.get("question"):
                    yield state["question"]
                continue
            if msg["parent_header"].get("msg_id") != self.msg_id:
                continue
            if kind in ("display_data", "update_display_data"):
                data = content["data"]
                if WIDGET in data and self.view is None:
                    self.view = data[WIDGET]["model_id"]
                    _send(self.client, self.view, {"event": "ready"})  # the view is drawn
                self.plain.append(data.get("text/plain", ""))
                self.html.append(data.get("text/html", ""))
            elif kind == "stream":
                self.printed.append(content["text"])
            elif kind == "error":
                self.errors.append(content["ename"])
            elif kind == "status" and content["execution_state"] == "idle":
                self.idle = True

    def finish(self) -> None:
        for _ in self.questions():
            raise AssertionError("a question after the chat ended")
        self.client.get_shell_msg(timeout=60)


def _run(client, code: str, timeout: float = 60) -> tuple[str, list[str]]:
    cell = Cell(client, code, timeout)
    cell.finish()
    return "".join(cell.printed), cell.errors


def test_the_box_answers_await_input_while_the_cell_runs(kernel, chat_path):
    manager, client = kernel
    cell = Cell(client, f"%%lmql -m local:{chat_path} -o result\n{CHAT_PROGRAM}")
    asked = []
    queued = None
    for question in cell.questions():
        asked.append(question)
        if queued is None:  # a cell queued meanwhile runs after this one, once
            queued = client.execute("print('queued ran', result.trace.conversation()[1])")
        _send(client, cell.view, {"event": "answer", "id": question["id"],
                                  "text": CHAT_SAID[len(asked) - 1]})
    client.get_shell_msg(timeout=60)
    assert cell.errors == []
    assert [q["prompt"] for q in asked] == ["", "And now?"]
    assert asked[0]["id"] != asked[1]["id"]

    # the queued cell ran after the chat, and saw its result
    printed = []
    while True:
        msg = cell.next()
        if msg["parent_header"].get("msg_id") != queued:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    client.get_shell_msg(timeout=60)
    assert "".join(printed).startswith("queued ran {'role': 'user', 'content': "
                                       "'hi there'}")

    printed, errors = _run(client, "print(json.dumps(result.trace.conversation()))")
    assert errors == []
    conversation = json.loads(printed)
    program = lmql_nb.query(CHAT_PROGRAM, is_async=False, model=lmql_nb.model(f"local:{chat_path}"))
    expected = program(inputs=CHAT_SAID).trace.conversation()
    assert conversation == expected
    assert [m["role"] for m in conversation] == ["system", "user", "assistant", "user",
                                                 "assistant"]
    assert [m["content"] for m in conversation if m["role"] == "user"] == CHAT_SAID
    # the view's final text holds the whole chat; its static rendering too, as text,
    # with the turns' labels and no input box
    assert CHAT_SAID[1] in cell.plain[-1] and "(running)" not in cell.plain[-1]
    static = cell.html[-1]
    assert "&lt;b&gt;Germany&lt;/b&gt; &amp; Berlin" in static and "<b>" not in static
    assert static.count("lmnb-trace-role") == 5
    assert "<input" not in static and "<form" not in static


def test_end_chat_in_the_box_ends_the_program(kernel, chat_path):
    manager, client = kernel
    cell = Cell(client, f"%%lmql -m local:{chat_path} -o ended\n{CHAT_PROGRAM}")
    for question in cell.questions():
        _send(client, cell.view, {"event": "end", "id": question["id"]})
    client.get_shell_msg(timeout=60)
    assert cell.errors == []
    printed, errors = _run(client, "print(json.dumps(ended.trace.conversation()))")
    assert [m["role"] for m in json.loads(printed)] == ["system"]


def test_an_interrupt_while_the_box_waits_ends_the_cell(kernel, chat_path):
    manager, client = kernel
    cell = Cell(client, f"%%lmql -m local:{chat_path} -o never\n{CHAT_PROGRAM}", timeout=120)
    started = None
    for question in cell.questions():
        assert started is None, "the interrupt did not end the cell"
        # a stale answer (another question's id) is not taken
        _send(client, cell.view, {"event": "answer", "id": question["id"] + 7, "text": "x"})
        time.sleep(0.5)
        started = time.monotonic()
        manager.interrupt_kernel()
    client.get_shell_msg(timeout=60)
    assert cell.errors == ["Interrupted"]
    assert time.monotonic() - started < 10
    # the trace so far stays: the system turn, the open user turn
    assert "You answer in one word." in cell.plain[-1]
    printed, errors = _run(client, "print('never' in globals(), 1 + 1)")
    assert (printed, errors) == ("False 2\n", [])


def test_without_a_drawn_view_it_asks_on_stdin_and_an_interrupt_ends_it(kernel, chat_path):
    """A frontend that never says it drew the view (no widgets) but takes input: the
    question goes to the kernel's stdin after the grace period, and the cell's next
    question goes there at once (never shown in the view again, no second wait); the
    interrupt button while stdin waits ends the cell too."""
    manager, client = kernel
    msg_id = client.execute(f"%%lmql -m local:{chat_path}\n{CHAT_PROGRAM}", allow_stdin=True)
    request = client.get_stdin_msg(timeout=120)
    assert request["msg_type"] == "input_request"
    assert request["content"]["prompt"] == "user: "
    client.input(CHAT_SAID[0])
    request = client.get_stdin_msg(timeout=120)
    assert request["content"]["prompt"] == "And now?"
    manager.interrupt_kernel()
    errors, shown = [], []
    while True:
        msg = client.get_iopub_msg(timeout=60)
        state = msg["content"].get("data", {}).get("state", {})
        if msg["msg_type"] == "comm_msg" and state.get("question"):
            shown.append(state["question"]["prompt"])
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            errors.append(msg["content"]["ename"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    client.get_shell_msg(timeout=60)
    assert errors == ["Interrupted"]
    assert shown == [""]  # the first question, offered in the view during the grace period
    printed, errors = _run(client, "print(2 + 2)")
    assert (printed, errors) == ("4\n", [])
