"""The command line, run as a user runs it: `python -m lmql_nb ...` in a new process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Optional

import lmql_nb


def _run(*args: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmql_nb", *args], capture_output=True,
                          text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def test_generate(tiny_gpt2_path):
    model_id = f"local:{tiny_gpt2_path}"
    out = _run("generate", "Once upon", "--max-tokens", "6", "--model", model_id)
    assert out.returncode == 0, out.stderr
    expected = lmql_nb.model(model_id).generate_sync("Once upon", max_tokens=6)
    assert out.stdout == f"Once upon{expected}\n"


def test_score_prints_a_table_with_the_best_value(tiny_gpt2_path):
    model_id = f"local:{tiny_gpt2_path}"
    out = _run("score", "The capital of", " France", " Germany", "--model", model_id)
    assert out.returncode == 0, out.stderr
    result = lmql_nb.model(model_id).score_sync("The capital of", [" France", " Germany"])
    best_line = next(line for line in out.stdout.splitlines() if "<- best" in line)
    assert repr(result.argmax()) in best_line
    assert f"{max(result.scores()):.4f}" in best_line


def test_bad_input_is_a_clear_error_and_exit_code_2(tiny_gpt2_path):
    out = _run("generate", "Hi", "--max-tokens", "-3", "--model", f"local:{tiny_gpt2_path}")
    assert out.returncode == 2
    assert "max_tokens must be an int >= 0" in out.stderr
    out = _run("score", "Hi", "x", "--model", "gpt2")
    assert out.returncode == 2
    assert "did you mean 'local:gpt2'" in out.stderr


def test_an_unreachable_server_is_a_message_and_exit_code_1():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = _run("generate", "Hi", "--model", "openai/nothing",
               env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "x"})
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("error: request to http://127.0.0.1:")
    assert "is the server running?" in out.stderr and "Traceback" not in out.stderr


def test_every_argument_of_generate_and_score_is_documented_from_the_declarations():
    """`--help` documents each argument; generate's options say what GenerateOptions
    declares for them (the meaning and the accepted values the API checks with)."""
    import argparse

    from lmql_nb.cli import _parser
    from lmql_nb.core.options import GENERATE_RULES, GenerateOptions

    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    descriptions = {f.name: f.metadata["description"] for f in GenerateOptions.fields()}
    for name in ("generate", "score", "demo"):
        for action in commands.choices[name]._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
    for action in commands.choices["generate"]._actions:
        if action.dest in descriptions:
            assert descriptions[action.dest] in action.help, action.dest
            assert GENERATE_RULES[action.dest].accepted(False) in action.help, action.dest
    shown = subprocess.run([sys.executable, "-m", "lmql_nb", "generate", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "random seed for sampling" in shown.stdout
