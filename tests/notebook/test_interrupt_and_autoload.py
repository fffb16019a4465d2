"""In a real kernel: the magics load without %load_ext when the user opts in through
IPython config, take their defaults from it, and an interrupt keeps what was generated."""

from __future__ import annotations

import os
import queue
import re

import pytest

from lmql_nb.core import paths

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, tiny_llama_path):
    from jupyter_client.manager import start_new_kernel

    tmp_path = tmp_path_factory.mktemp("kernel")
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.MagicsManager.lazy_magics = {"lmql_generate": "lmql_nb", "lmql_score": "lmql_nb"}\n'
        f"c.LmqlMagics.model = {f'local:{tiny_llama_path}'!r}\n"
        "c.LmqlMagics.max_tokens = 120\n")
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    # the embedded model's converted copy lives in the user's cache (see the gemma fixture)
    env.pop(paths.CACHE_ENV, None)
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _run(client, code: str, on_stdout=None, timeout: float = 120,
         messages: list | None = None) -> tuple[str, str | None]:
    """Execute `code`; return what it printed and the name of the error it raised, if
    any (and collect its iopub messages in `messages`)."""
    msg_id = client.execute(code)
    printed, error = [], None
    while True:
        try:
            msg = client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the kernel for {timeout} s") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        content = msg["content"]
        if messages is not None:
            messages.append(msg)
        if msg["msg_type"] == "stream" and content["name"] == "stdout":
            printed.append(content["text"])
            if on_stdout is not None:
                on_stdout()
        if msg["msg_type"] == "error":
            error = content["ename"]
        if msg["msg_type"] == "status" and content["execution_state"] == "idle":
            break
    client.get_shell_msg(timeout=timeout)
    return "".join(printed), error


def test_magics_load_on_first_use_with_defaults_from_config(kernel, tiny_llm):
    _, client = kernel
    loaded, _ = _run(client, "import sys\nprint('lmql_nb.notebook.magics' in sys.modules)")
    assert loaded == "False\n"  # nothing imported lmql_nb's magics at start-up
    # no %load_ext; model and max_tokens come from the config file
    details = tiny_llm.generate_sync("The capital", max_tokens=120, return_details=True)
    # --format text streams token by token: the tokens' texts (which equal the completion
    # except where a random model writes invalid UTF-8)
    expected = "".join(t.text for t in details.tokens)
    printed, error = _run(client, "%%lmql_generate --format text\nThe capital")
    assert error is None and printed == expected + "\n"


@pytest.mark.gemma
def test_interrupt_stops_and_keeps_what_was_generated(kernel, gemma):
    # Gemma (about 0.1 s a token here) leaves seconds between the first token and the end
    manager, client = kernel
    interrupted = []

    def interrupt_once():
        if not interrupted:
            interrupted.append(True)
            manager.interrupt_kernel()

    messages: list = []
    printed, error = _run(client, f"%%lmql_generate -m local:gemma-3-270m --max-tokens 64 "
                                  f"--format text -o partial\n{PROMPT}", on_stdout=interrupt_once,
                          messages=messages)
    assert error == "Interrupted"  # a KeyboardInterrupt: "Run All" stops here
    shown, _ = _run(client, "print(repr(partial))")
    partial = eval(shown)  # a str repr printed by the kernel
    assert printed == partial + "\n"  # what was shown is what was kept
    [report] = [m["content"]["traceback"] for m in messages if m["msg_type"] == "error"]
    assert len(report) == 1 and re.fullmatch(r"interrupted: kept [1-9]\d* tokens?", report[0])
    beginning = gemma.generate_sync(PROMPT, max_tokens=16)
    assert partial and beginning.startswith(partial)


def test_widget_updates_are_paced_and_end_with_every_token(kernel, tiny_llm):
    import time

    from lmql_nb.notebook import codec

    _, client = kernel
    full = tiny_llm.generate_sync("A long story", max_tokens=120, return_details=True)
    messages: list = []
    start = time.monotonic()
    _, error = _run(client, "%%lmql_generate --max-tokens 120\nA long story", messages=messages)
    elapsed = time.monotonic() - start
    assert error is None
    opened = {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"
              and "finish_reasons" in m["content"]["data"]["state"]}
    assert len(opened) == 1  # one TokenView
    updates = [m for m in messages if m["msg_type"] == "comm_msg"
               and m["content"]["comm_id"] in opened
               and ["data"] in m["content"]["data"].get("buffer_paths", [])]
    # at most one update per update_interval (0.05 s), plus the final one
    assert 1 <= len(updates) <= elapsed / 0.05 + 2
    shown = [codec.unpack(bytes(u["buffers"][u["content"]["data"]["buffer_paths"].index(["data"])]))
             for u in updates]
    counts = [len(s["text"]) for s in shown]
    assert counts == sorted(counts)  # grows
    assert shown[-1]["text"] == [t.text for t in full.tokens]
    assert shown[-1]["logprob"].tolist() == pytest.approx([t.logprob for t in full.tokens])
