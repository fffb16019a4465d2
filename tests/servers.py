"""Real model servers on 127.0.0.1 and a fault proxy, for the server's tests (tests/server)
and the client's (tests/backends); tests/conftest.py makes the fixtures available to both.

Servers are started the way a user starts one (`python -m lmql_nb serve ... --port 0`,
the API key in the environment) and read the port from the line the server prints once
it is ready. The fault proxy sits between a client and a server and answers chosen
requests with a 429, a 500, a reset connection or silence, forwarding the others.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

API_KEY = "sk-lmqlnb-test-5f1d2c9a8b7e6d5c4b3a"
READY = re.compile(r"serving (\S+) at (http://\S+)")
START_TIMEOUT = 120


class ServerProcess:
    """`python -m lmql_nb serve MODEL` in a subprocess; killed on `stop()`."""

    def __init__(self, model: str, name: str, api_key: Optional[str] = API_KEY,
                 port: int = 0, extra: tuple[str, ...] = (), drop_env: tuple[str, ...] = ()):
        self.model, self.name, self.api_key = model, name, api_key
        env = {k: v for k, v in os.environ.items() if k not in drop_env}
        env.pop("LMQL_NB_API_KEY", None)
        if api_key:
            env["LMQL_NB_API_KEY"] = api_key
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lmql_nb", "serve", model, "--name", name,
             "--port", str(port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.base_url = self._wait_ready()
        self.port = int(self.base_url.rsplit(":", 1)[1].split("/")[0])
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_ready(self) -> str:
        lines: list[str] = []

        def read() -> None:
            for line in self.process.stdout:
                lines.append(line)
                if READY.search(line):
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        match = next((READY.search(line) for line in lines if READY.search(line)), None)
        if match is None:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"the server did not start: {''.join(lines)}{err[-3000:]}")
        return match.group(2)

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    @property
    def root(self) -> str:
        return self.base_url[:-3]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def server_process():
    """The `ServerProcess` class, for tests that start (and kill) servers of their own."""
    return ServerProcess


@pytest.fixture(scope="session")
def gpt2_server(tiny_gpt2_path: Path):
    """The tiny GPT-2 served with an API key, for the whole session; it has no chat
    template of its own, so it runs the ones requests bring."""
    server = ServerProcess(f"local:{tiny_gpt2_path}", "tiny-gpt2",
                           extra=("--trust-request-chat-template",))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_server(tiny_llama_path: Path):
    """The tiny Llama (BOS, byte fallback) served without a key; it runs the chat
    templates requests bring."""
    server = ServerProcess(f"local:{tiny_llama_path}", "tiny-llama", api_key=None,
                           extra=("--trust-request-chat-template",))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def long_gpt2_path(tiny_gpt2_path: Path, tmp_path_factory) -> Path:
    """The tiny GPT-2's tokenizer with a random model of 2048 positions: generating to
    the end of its context takes long enough to cancel."""
    import shutil

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("long-gpt2")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_gpt2_path / name, folder / name)
    config = GPT2Config.from_pretrained(tiny_gpt2_path)
    config.n_positions = 2048
    torch.manual_seed(1)
    GPT2LMHeadModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def gpt2_local(tiny_gpt2_path: Path):
    """The same tiny GPT-2 in this process, for independent expected values."""
    import lmql_nb

    return lmql_nb.model(f"local:{tiny_gpt2_path}")


@pytest.fixture(scope="session")
def llama_local(tiny_llama_path: Path):
    import lmql_nb

    return lmql_nb.model(f"local:{tiny_llama_path}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STATUSES = {"429": "429 Too Many Requests", "500": "500 Internal Server Error",
            "503": "503 Service Unavailable"}


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that injects faults into chosen requests.

    `faults` is consumed one per request: "429" or "503" (with `Retry-After:
    retry_after`), "500", "reset" (the connection is reset), "stall" (no answer until the client gives
    up) or "forward". When it is empty, `default` applies.
    """

    def __init__(self, upstream_port: int, default: str = "forward"):
        self.upstream_port = upstream_port
        self.default = default
        self.faults: list[str] = []
        self.retry_after = "1"
        self.requests: list[tuple[float, str]] = []  # (time, fault)
        self.forwarded: list[tuple[str, bytes]] = []  # (request line, body) passed on
        self.abandoned = 0  # stalled requests the client closed
        self.stalled = 0  # stalled requests open now
        self.max_stalled = 0  # the most open at once
        self.forwarding = 0  # forwarded requests open now
        self.max_forwarding = 0  # the most open at once
        self.open_by_path: dict[str, int] = {}  # forwarded requests open now, per path
        self.max_by_path: dict[str, int] = {}  # the most open at once, per path
        self._abandoned_event = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_abandoned(self, timeout: float) -> bool:
        return self._abandoned_event.wait(timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                fault = self.faults.pop(0) if self.faults else self.default
                self.requests.append((time.monotonic(), fault))
                if fault in STATUSES:
                    status = STATUSES[fault]
                    payload = b'{"error": {"message": "injected fault", "type": "fault"}}'
                    extra = f"Retry-After: {self.retry_after}\r\n" if fault in ("429", "503") \
                        else ""
                    writer.write((f"HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\n"
                                  f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)
                    await writer.drain()
                    continue
                if fault == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if fault == "stall":
                    self.stalled += 1
                    self.max_stalled = max(self.max_stalled, self.stalled)
                    try:
                        while await reader.read(1024):
                            pass
                    finally:
                        self.stalled -= 1
                    self.abandoned += 1
                    self._abandoned_event.set()
                    return
                line = head.split(b"\r\n", 1)[0].decode()
                self.forwarded.append((line, body))
                path = line.split(" ")[1] if " " in line else ""
                self.forwarding += 1
                self.open_by_path[path] = self.open_by_path.get(path, 0) + 1
                self.max_forwarding = max(self.max_forwarding, self.forwarding)
                self.max_by_path[path] = max(self.max_by_path.get(path, 0),
                                             self.open_by_path[path])
                closed = False

                def answered(path: str = path) -> None:  # once: the client has it all
                    nonlocal closed
                    if not closed:
                        closed = True
                        self.forwarding -= 1
                        self.open_by_path[path] -= 1

                try:
                    await self._forward(head, body, writer, answered)
                finally:
                    answered()
                return
        finally:
            writer.transport.abort() if writer.transport.is_closing() else writer.close()

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter,
                       answered: Callable[[], None]) -> None:
        """Relay the request and its answer; `answered()` once the client has the whole
        answer (its Content-Length relayed), not only once the server closes the
        connection: by then the client may have sent its next request, and counting
        both as open would break the bound on requests in flight that tests assert."""
        lines = [line for line in head.split(b"\r\n")
                 if line and not line.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(request)
        await up_writer.drain()
        received, expected = b"", None
        while chunk := await up_reader.read(65536):
            received += chunk
            if expected is None and b"\r\n\r\n" in received:
                answer_head = received.split(b"\r\n\r\n", 1)[0]
                length = re.search(rb"(?im)^content-length:\s*(\d+)", answer_head)
                expected = len(answer_head) + 4 + int(length.group(1)) if length else -1
            if expected is not None and 0 <= expected <= len(received):
                answered()
            writer.write(chunk)
            await writer.drain()
        up_writer.close()

    def close(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def fault_proxy(gpt2_server):
    proxy = FaultProxy(gpt2_server.port)
    yield proxy
    proxy.close()
