"""Issue 25 in a real kernel: interrupting a `%%lmql` cell, whatever its program does
(loops with and without holes, cached and not), leaves the next cell working."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

from lmql_nb.core import paths

CUT = "The capital of France is"
PROGRAMS = {
    "text loop": 'while True:\n    "x"',
    "python loop": "i = 0\nwhile True:\n    i += 1",
    "uncached holes": f'"{CUT}"\nwhile True:\n    "[X]" where STOPS_BEFORE(X, stop)',
    "cached holes": f'"{CUT}"\nwhile True:\n    "[X]" where STOPS_BEFORE(X, stop)',
}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, tiny_llama_path):
    from jupyter_client.manager import start_new_kernel

    tmp_path = tmp_path_factory.mktemp("interrupt-kernel")
    env = {**os.environ}
    env.pop(paths.CACHE_ENV, None)
    env[paths.CACHE_ENV] = str(tmp_path / "cache")
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    yield manager, client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _run(client, code: str, timeout: float = 60, on_start=None) -> tuple[str, str | None]:
    """Execute `code`; what it printed and its error's name. No reply within `timeout`
    seconds is a hang: the test fails."""
    msg_id = client.execute(code)
    printed, error = [], None
    deadline = time.monotonic() + timeout  # a cell still sending widget updates may hang
    while True:
        try:
            if time.monotonic() > deadline:
                raise queue.Empty
            msg = client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the kernel hung: nothing for {timeout} s after "
                                 f"{code!r}") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        content = msg["content"]
        if msg["msg_type"] == "status" and content["execution_state"] == "busy" and on_start:
            on_start()
        if msg["msg_type"] == "stream" and content["name"] == "stdout":
            printed.append(content["text"])
        if msg["msg_type"] == "error":
            error = content["ename"]
        if msg["msg_type"] == "status" and content["execution_state"] == "idle":
            break
    client.get_shell_msg(timeout=timeout)
    return "".join(printed), error


def test_interrupting_any_query_cell_leaves_the_next_one_working(kernel, tiny_llama_path):
    manager, client = kernel
    model = f"local:{tiny_llama_path}"
    _, error = _run(client, f"%load_ext lmql_nb\n%config LmqlMagics.model = {model!r}\n"
                            "import lmql_nb\nfrom lmql_nb.query import runtime\n"
                            "runtime.STALL_LIMIT = 10**9  # loops that never end by themselves\n"
                            f"llm = lmql_nb.model({model!r})\n"
                            f"stop = llm.generate_sync({CUT!r}, max_tokens=1)", timeout=180)
    assert error is None
    for label, program in PROGRAMS.items():
        cached = label != "uncached holes"
        _, error = _run(client, "from lmql_nb.generations.result_cache import results\n"
                                f"results.enabled = {cached}")
        assert error is None
        timer = threading.Timer(1.5, manager.interrupt_kernel)
        _, error = _run(client, f"%%lmql --max-len 1000000000\n{program}\n",
                        on_start=timer.start)
        assert error in ("Interrupted", "KeyboardInterrupt"), (label, error)
        printed, error = _run(client, '%%lmql -o after\n"Hi[Y]" where len(TOKENS(Y)) < 3\n'
                                      "return Y\n")
        assert error is None, (label, error)
        printed, error = _run(client, "print(after == llm.generate_sync('Hi', max_tokens=2))")
        assert (printed, error) == ("True\n", None), label
