"""The vLLM tier: one real vLLM server (its CPU build, in a virtual environment of its
own) on the embedded Gemma saved as a transformers folder, for the whole tier, and the
same folder in process as the oracle.

Every test here is marked `vllm` (and `gemma`) by tests/conftest.py; `bash
scripts/test.sh` installs vLLM (cached) and runs the tier, `--fast` leaves it out. A
missing vLLM environment fails the tier with the command that installs it: it is never
skipped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from vllm_server import VLLMServer  # noqa: E402

NAME = "gemma"
#: "http://127.0.0.1:PORT": use a vLLM server already running (started by hand with
#: `python scripts/vllm_server.py FOLDER`, which passes the same flags) instead of one
RUNNING_ENV = "LMQL_NB_VLLM_URL"


class _Running:
    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.base_url = f"{self.root}/v1"
        self.port = int(self.root.rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def gemma_folder(gemma) -> Path:
    """The embedded Gemma as the transformers folder lmql_nb converted it into."""
    return Path(gemma.backend.location())


@pytest.fixture(scope="session")
def vllm_server(gemma_folder):
    """vLLM serving the folder, started as docs/scaling.md tells users (without
    --enable-tokenizer-info-endpoint, as most start it, and with
    --trust-request-chat-template so that a request may bring a chat template)."""
    running = os.environ.get(RUNNING_ENV)
    if running:  # the edit-test loop: a server started by hand on the same folder
        yield _Running(running)
        return
    server = VLLMServer(gemma_folder, NAME, extra=("--trust-request-chat-template",))
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote(vllm_server):
    """lmql_nb's client on that server, as a user points it there."""
    import lmql_nb

    return lmql_nb.model(f"openai/{NAME}", base_url=vllm_server.base_url, timeout=120)


@pytest.fixture(scope="session")
def local(gemma):
    """The oracle: the same folder in this process."""
    return gemma
