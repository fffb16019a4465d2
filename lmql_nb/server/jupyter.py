"""A Jupyter server extension: model servers on demand, behind Jupyter's authentication.

Enabled by `jupyter-config/jupyter_server_config.d/lmql_nb.json` (installed under
`etc/jupyter/`). It adds one REST resource to the Jupyter server:

    GET    {base_url}lmql_nb/servers                  the model servers it runs
    POST   {base_url}lmql_nb/servers  {"model": "local:gemma-3-270m", "name": optional}
                                                      start one (or return the running one)
    DELETE {base_url}lmql_nb/servers?model=ID         stop one

Each model server is `python -m lmql_nb serve MODEL --port 0` on 127.0.0.1 with a fresh
random API key; POST answers `{"model", "name", "base_url", "api_key"}`. Requests must be
authenticated as Jupyter requires (its token or login cookie), or carry the header
`X-LMQL-NB-Token` with the secret the extension puts in `$LMQL_NB_JUPYTER_TOKEN` (beside
`$LMQL_NB_JUPYTER_URL`) in the Jupyter server's environment, which the kernels it starts
inherit. So in a notebook

    lmql_nb.model("local:gemma-3-270m", endpoint="jupyter")

asks this Jupyter server for the model's server, and every kernel shares one loaded model.
The secret grants only this resource; set `$LMQL_NB_JUPYTER_TOKEN` before starting Jupyter
to choose it. Model servers stop with the Jupyter server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..backends.endpoints import API_KEY_ENV, START_TIMEOUT, TOKEN_ENV, TOKEN_HEADER, URL_ENV

ROUTE = "lmql_nb/servers"


class _ModelServer:
    """One `lmql_nb serve` child process."""

    def __init__(self, model: str, name: str, process: asyncio.subprocess.Process,
                 api_key: str, base_url: str, log_path: Path):
        self.model, self.name, self.process = model, name, process
        self.api_key, self.base_url, self.log_path = api_key, base_url, log_path

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def info(self, with_key: bool = True) -> dict:
        info = {"model": self.model, "name": self.name, "base_url": self.base_url,
                "pid": self.process.pid, "running": self.alive}
        if with_key:
            info["api_key"] = self.api_key
        return info


class ModelServers:
    """The model servers one Jupyter server runs, at most one per model id."""

    def __init__(self, log: Any, log_dir: Optional[str] = None):
        self.log = log
        self.log_dir = Path(log_dir or tempfile.gettempdir())
        self._servers: dict[str, _ModelServer] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def list(self) -> list[dict]:
        return [s.info(with_key=False) for s in self._servers.values()]

    async def ensure(self, model: str, name: Optional[str]) -> dict:
        """The running server of `model`, started first if needed."""
        lock = self._locks.setdefault(model, asyncio.Lock())
        async with lock:
            server = self._servers.get(model)
            if server is not None and server.alive:
                return server.info()
            server = await self._start(model, name)
            self._servers[model] = server
            return server.info()

    async def _start(self, model: str, name: Optional[str]) -> _ModelServer:
        from .run import READY_PREFIX, default_name

        name = name or default_name(model)
        api_key = secrets.token_urlsafe(32)
        env = {**os.environ, API_KEY_ENV: api_key}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"lmql_nb-serve-{secrets.token_hex(4)}.log"
        with open(log_path, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "lmql_nb", "serve", model, "--name", name,
                "--host", "127.0.0.1", "--port", "0", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=log_file)
        self.log.info("lmql_nb: starting a model server for %s (pid %d, log %s)", model,
                      process.pid, log_path)
        try:
            line = await asyncio.wait_for(self._ready_line(process, READY_PREFIX), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError):
            if process.returncode is None:
                process.kill()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the model server for {model!r} did not start: {tail}") from None
        base_url = line.rsplit(" at ", 1)[1].strip()
        asyncio.ensure_future(self._drain(process))
        return _ModelServer(model, name, process, api_key, base_url, log_path)

    @staticmethod
    async def _ready_line(process: asyncio.subprocess.Process, prefix: str) -> str:
        assert process.stdout is not None  # started with stdout=PIPE
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise EOFError()
            line = raw.decode(errors="replace")
            if line.startswith(prefix):
                return line

    @staticmethod
    async def _drain(process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None  # started with stdout=PIPE
        while await process.stdout.read(65536):
            pass

    def stop(self, model: str) -> bool:
        server = self._servers.pop(model, None)
        if server is None:
            return False
        if server.alive:
            with contextlib.suppress(ProcessLookupError):  # works after the loop closed too
                os.kill(server.process.pid, signal.SIGTERM)
        return True

    def stop_all(self) -> None:
        for model in list(self._servers):
            self.stop(model)


def _handler_class() -> type:
    from jupyter_server.base.handlers import APIHandler
    from tornado import web

    class ServersHandler(APIHandler):
        """`lmql_nb/servers`: Jupyter's authentication, or the kernels' secret."""

        def initialize(self, servers: ModelServers, secret: str) -> None:
            self.servers = servers
            self.secret = secret

        def _has_secret(self) -> bool:
            given = self.request.headers.get(TOKEN_HEADER, "")
            return bool(given) and hmac.compare_digest(given.encode(), self.secret.encode())

        def check_xsrf_cookie(self) -> None:
            if not self._has_secret():
                super().check_xsrf_cookie()

        def _require_auth(self) -> None:
            if not (self._has_secret() or self.current_user):
                raise web.HTTPError(403, "authentication required")

        async def get(self) -> None:
            self._require_auth()
            self.finish(json.dumps({"servers": self.servers.list()}))

        async def post(self) -> None:
            self._require_auth()
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise web.HTTPError(400, "the body must be JSON") from None
            model = body.get("model") if isinstance(body, dict) else None
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(model, str) or not model.startswith("local:"):
                raise web.HTTPError(400, "model must be a 'local:...' model id, e.g. "
                                         "'local:gemma-3-270m'")
            if name is not None and (not isinstance(name, str) or not name):
                raise web.HTTPError(400, "name must be a non-empty string")
            try:
                info = await self.servers.ensure(model, name)
            except RuntimeError as error:
                raise web.HTTPError(500, str(error)) from None
            self.finish(json.dumps(info))

        async def delete(self) -> None:
            self._require_auth()
            model = self.get_argument("model", "")
            if not self.servers.stop(model):
                raise web.HTTPError(404, f"no model server for {model!r}")
            self.set_status(204)
            self.finish()

    return ServersHandler


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "lmql_nb.server.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register `lmql_nb/servers` and tell the kernels where and how to ask."""
    import atexit

    from jupyter_server.utils import url_path_join

    secret = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    servers = ModelServers(serverapp.log, getattr(serverapp, "runtime_dir", None))
    route = url_path_join(serverapp.web_app.settings["base_url"], ROUTE)
    serverapp.web_app.add_handlers(".*$", [(route, _handler_class(),
                                            {"servers": servers, "secret": secret})])
    os.environ[TOKEN_ENV] = secret  # inherited by the kernels this server starts
    os.environ[URL_ENV] = url_path_join(serverapp.connection_url, ROUTE)
    atexit.register(servers.stop_all)
    serverapp.log.info("lmql_nb: model servers on demand at %s", route)


# the older entry point name
load_jupyter_server_extension = _load_jupyter_server_extension
