"""`python -m lmql_nb serve` reaches a model through the `TokenIdBackend` protocol only.

The built-in in-process backends implement it (llama.cpp is served in
test_llamacpp_serve.py, transformers in test_server.py); a backend that does not work on
token ids is refused before the server listens, with a message naming what it lacks.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import lmql_nb
from lmql_nb.backends.protocol import TokenIdBackend

SERVER = Path(lmql_nb.__file__).parent / "server"


def test_the_in_process_backends_implement_the_protocol(tiny_gpt2_path):
    # made, not loaded: llama.cpp's is checked without loading the embedded GGUF
    for model_id in (f"local:{tiny_gpt2_path}", "llama.cpp:gemma-3-270m"):
        assert isinstance(lmql_nb.model(model_id).backend, TokenIdBackend), model_id
    assert not isinstance(lmql_nb.model("openai/gpt-4o-mini", api_key="sk-x").backend,
                          TokenIdBackend)


def test_serving_a_backend_without_token_ids_is_refused_naming_what_it_lacks():
    env = dict(os.environ, OPENAI_API_KEY="sk-test-not-used")
    result = subprocess.run([sys.executable, "-m", "lmql_nb", "serve", "openai/gpt-4o-mini",
                             "--port", "0"], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode != 0
    assert "does not work on token ids" in result.stderr
    assert "score_ids" in result.stderr and "TokenIdBackend" in result.stderr
    assert "sk-test-not-used" not in result.stderr + result.stdout


def test_the_server_names_no_concrete_backend():
    # the seam: nothing in server/ imports a backend's own module, only the protocol
    for path in SERVER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "backends" in node.module:
                assert node.module.endswith(("backends.protocol", "backends.endpoints")), \
                    f"{path.name} imports {node.module}"
