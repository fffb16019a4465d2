"""The Jupyter server extension: model servers on demand, behind Jupyter's authentication.

A real Jupyter server on 127.0.0.1 reads the extension's config from `jupyter-config/`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import lmql_nb

from installed import dev_package

dev_package("jupyter_server")  # installed with jupyterlab/notebook of [dev]

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "jupyter-test-token-1b2c3d"
KERNEL_SECRET = "kernel-secret-9f8e7d6c"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """`jupyter server` with lmql_nb's config folder on its config path."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(REPO / "jupyter-config"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "run"),
           "JUPYTER_DATA_DIR": str(home / "data"), "LMQL_NB_JUPYTER_TOKEN": KERNEL_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
         f"--ServerApp.root_dir={home}",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/status", headers={"Authorization": f"token {TOKEN}"},
                         timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"jupyter server did not start: {process.stderr.read()[-3000:]}")
        time.sleep(0.25)
    yield url, process
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def test_the_config_file_enables_the_extension():
    import json

    config = json.loads((REPO / "jupyter-config" / "jupyter_server_config.d" /
                         "lmql_nb.json").read_text())
    # (the notebook layer's saving extension is enabled beside it)
    assert config["ServerApp"]["jpserver_extensions"]["lmql_nb.server.jupyter"] is True


def test_requests_need_jupyters_authentication(jupyter):
    url, _ = jupyter
    assert httpx.get(f"{url}/lmql_nb/servers", timeout=10).status_code == 403
    wrong = httpx.post(f"{url}/lmql_nb/servers", json={"model": "local:x"}, timeout=10,
                       headers={"X-LMQL-NB-Token": "wrong"})
    assert wrong.status_code == 403
    listing = httpx.get(f"{url}/lmql_nb/servers", timeout=10,
                        headers={"Authorization": f"token {TOKEN}"})
    assert listing.status_code == 200 and "servers" in listing.json()
    bad = httpx.post(f"{url}/lmql_nb/servers", json={"model": "openai/gpt-4o"}, timeout=10,
                     headers={"Authorization": f"token {TOKEN}"})
    assert bad.status_code == 400 and "local:" in bad.text


def test_starts_a_server_on_demand_and_kernels_share_it(jupyter, tiny_gpt2_path, gpt2_local,
                                                        monkeypatch):
    import openai

    url, process = jupyter
    model = f"local:{tiny_gpt2_path}"
    started = httpx.post(f"{url}/lmql_nb/servers", json={"model": model, "name": "shared"},
                         headers={"Authorization": f"token {TOKEN}"}, timeout=120)
    assert started.status_code == 200, started.text
    info = started.json()
    assert info["base_url"].startswith("http://127.0.0.1:") and info["api_key"]
    with openai.OpenAI(api_key=info["api_key"], base_url=info["base_url"],
                       max_retries=0) as client:
        text = client.completions.create(model="shared", prompt="Once upon", max_tokens=6,
                                         temperature=0).choices[0].text
    assert text == gpt2_local.generate_sync("Once upon", max_tokens=6, cache=False)

    # a kernel of this Jupyter server: it inherits these two variables
    monkeypatch.setenv("LMQL_NB_JUPYTER_URL", f"{url}/lmql_nb/servers")
    monkeypatch.setenv("LMQL_NB_JUPYTER_TOKEN", KERNEL_SECRET)
    llm = lmql_nb.model(model, endpoint="jupyter")
    assert llm.generate_sync("Once upon", max_tokens=6, cache=False) == text
    assert llm.backend.base_url == info["base_url"]  # the running server, not a new one
    listing = httpx.get(f"{url}/lmql_nb/servers", timeout=10,
                        headers={"Authorization": f"token {TOKEN}"}).json()["servers"]
    assert len(listing) == 1 and "api_key" not in listing[0]

    process.terminate()  # the model server stops with Jupyter
    process.wait(30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the model server outlived the Jupyter server")


def test_endpoint_jupyter_outside_jupyter_says_so(monkeypatch, tiny_gpt2_path):
    monkeypatch.delenv("LMQL_NB_JUPYTER_URL", raising=False)
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}", endpoint="jupyter", timeout=5)
    with pytest.raises(RuntimeError, match="server extension enabled"):
        llm.generate_sync("Hi", max_tokens=1)
