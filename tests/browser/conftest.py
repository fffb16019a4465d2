"""A JupyterLab server on 127.0.0.1 and a headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from screenshots import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]


# JupyterLab may ask for the kernel although the notebook names one, at any moment while
# it connects: accept its choice (the notebook's own kernel) whenever it asks
ACCEPT_KERNEL = """new MutationObserver(() => {
  for (const dialog of document.querySelectorAll('.jp-Dialog')) {
    if (dialog.textContent.includes('Select Kernel')) dialog.querySelector('button.jp-mod-accept')?.click();
  }
}).observe(document, {childList: true, subtree: true});"""


def run_all(page) -> None:
    """Run all cells; again if a kernel that was still connecting dropped the request."""
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "[...document.querySelectorAll('.jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/"
                ".test(p.textContent))", timeout=15_000)
            return
        except Exception:
            page.wait_for_timeout(2000)
    raise AssertionError("JupyterLab ran no cell")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: its URL, token, notebook folder and settings folder."""

    def __init__(self, url: str, token: str, root: Path, settings: Path):
        self.url, self.token, self.root, self.settings = url, token, root, settings

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def set_theme(self, theme: str) -> None:
        """Pick JupyterLab's theme for pages opened from now on."""
        folder = self.settings / "@jupyterlab" / "apputils-extension"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))


def require_chromium() -> None:
    """In CI a missing browser is a broken setup, not a reason to skip."""
    if not Path(CHROMIUM).exists():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")


@contextlib.contextmanager
def jupyter_server(module: str, root: Path, log_path: Path, extra_args=(), env=None):
    """Start `python -m <module>` (jupyterlab or notebook) on 127.0.0.1 with a random port
    and token; yield (url, token) once it answers; stop it afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    # lmql_nb's own server config, as installing the package puts it under etc/jupyter
    # (an editable install may hold an older copy)
    config = log_path.parent / f"{module}-config"
    (config / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
    shipped = ROOT / "jupyter-config" / "jupyter_server_config.d" / "lmql_nb.json"
    (config / "jupyter_server_config.d" / "lmql_nb.json").write_text(shipped.read_text())
    env = {**(env or os.environ), "JUPYTER_CONFIG_DIR": str(config)}
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.port_retries=0", "--allow-root", *extra_args],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not start; see {log.name}") from None
                time.sleep(0.3)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("lab-root")
    settings = tmp_path_factory.mktemp("lab-settings")
    folder = settings / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True)
    # no news or update checks: no network, no pop-ups over the notebook
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # start the notebook's own kernel without asking (a late "Select Kernel" dialog
    # would cancel a "Run All" under way)
    docmanager = settings / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("lab-workspaces"))}
    with jupyter_server("jupyterlab", root, root.parent / "lab.log",
                        ["--LabApp.news_url=", "--LabApp.extension_manager=readonly"],
                        env) as (url, token):
        yield Lab(url, token, root, settings)


@pytest.fixture(scope="module")
def browser():
    """Chromium, per test module: Playwright's sync API marks an event loop as running in
    the main thread while it is open, which would break asyncio.run in later tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every JavaScript dialog (alert, confirm...) it sees."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
