"""Starting the server: checks before binding, the model loaded before answering.

The server binds to 127.0.0.1 by default; binding anywhere else without an API key is
refused (anyone on the network could use the model). Once the model is loaded and the
socket is bound it prints one line, `lmql_nb serve: serving NAME at http://HOST:PORT/v1`,
which tools that start it (tests, the Jupyter extension) read to learn the port when
`--port 0` asked for a free one.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any, Optional

from ..backends.endpoints import API_KEY_ENV

READY_PREFIX = "lmql_nb serve: serving "


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_name(model_id: str) -> str:
    """The name clients use when `--name` is not given: the model's file or folder name."""
    _, _, target = model_id.partition(":")
    target = target or model_id
    path = Path(target.rstrip("/"))
    return path.stem if path.suffix.lower() == ".gguf" else path.name or target


def check_binding(host: str, api_key: Optional[str]) -> None:
    """Refuse to serve beyond this machine without a key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(f"refusing to bind to {host!r} without an API key: anyone who can "
                         "reach it could use the model. Pass --api-key (or set "
                         f"{API_KEY_ENV}), or bind to 127.0.0.1")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), not yet listening (port 0 picks a free one), so a
    port that cannot be had fails before the model loads."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in [0, 65535] (0: a free one), got {port!r}")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP named, so that asyncio turns Nagle's algorithm off on each connection:
    # with it on, a response written as headers then body waited ~40 ms for the
    # client's delayed ACK (every request took at least 44 ms on 127.0.0.1)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except (OSError, OverflowError) as error:
        sock.close()
        reason = getattr(error, "strerror", None) or error
        raise ValueError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def serve(model_id: str, name: Optional[str] = None, host: str = "127.0.0.1", port: int = 8080,
          api_key: Optional[str] = None, log_level: str = "warning",
          max_body_bytes: Optional[int] = None, trust_request_chat_template: bool = False,
          **model_options: Any) -> None:
    """Load `model_id` and serve it until interrupted (blocks).

    SIGTERM or SIGINT ends the work in flight at once (its clients get a 503, or an
    error event in a stream) and stops the server within a few seconds.
    """
    try:
        import importlib

        importlib.import_module("starlette")
        import uvicorn
    except ImportError as error:
        raise ImportError(f"`lmql_nb serve` needs starlette and uvicorn ({error.name} is "
                          "missing): pip install 'lmql_nb[server]'") from None

    from .. import api
    from ..backends.protocol import token_id_backend
    from .app import create_app
    from .body import DEFAULT_MAX_BODY_BYTES
    from .bridge import ServedModel

    check_binding(host, api_key)
    if max_body_bytes is not None and max_body_bytes < 1024:
        raise ValueError(f"--max-body-bytes must be at least 1024, got {max_body_bytes}")
    sock = bind(host, port)
    try:
        backend = token_id_backend(api.model(model_id, **model_options).backend, model_id)
        served = ServedModel(backend, name or default_name(model_id), model_id,
                             trust_request_chat_template)
        served.load()
    except BaseException:
        sock.close()
        raise
    sock.listen(128)  # only now: a client that connects earlier is refused, not kept waiting
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    app = create_app(served, api_key, max_body_bytes or DEFAULT_MAX_BODY_BYTES)
    config = uvicorn.Config(app, log_level=log_level,
                            access_log=log_level in ("debug", "info"), lifespan="off",
                            timeout_graceful_shutdown=3)
    server = _server(config, served)
    print(f"{READY_PREFIX}{served.name} at http://{shown_host}:{bound_port}/v1", flush=True)
    print(f"  (model {model_id}; API key {'required' if api_key else 'not required'})",
          file=sys.stderr, flush=True)
    server.run(sockets=[sock])


def _server(config: Any, served: Any) -> Any:
    """A uvicorn server for `config` that stops `served`'s work when told to exit."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, which on SIGTERM/SIGINT first ends the model's work in
        flight (uvicorn alone would wait for it, and a long generation outlasts any
        grace period)."""

        def __init__(self, config: Any, served: Any):
            super().__init__(config)
            self.served = served
            self.loop: Optional[asyncio.AbstractEventLoop] = None

        async def serve(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self.served.shutdown)
            super().handle_exit(sig, frame)

    return Server(config, served)
