"""A toy view: one JS file on the shared base (toy_view.js) and one Python class, added
from the tests without editing lmql_nb, to show how a view plugs in."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from lmql_nb.notebook.views.base import LmqlWidget

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
TOY = Path(__file__).parent


def bundle(entry: Path, out: Path, fmt: str = "esm") -> Path:
    """Bundle `entry` with the project's esbuild (as js/build.mjs does)."""
    if not (JS / "node_modules" / "esbuild").is_dir() or not shutil.which("node"):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("run `npm ci` in js/ first")
    subprocess.run([str(JS / "node_modules" / ".bin" / "esbuild"), str(entry), "--bundle",
                    f"--format={fmt}", f"--outfile={out}", "--log-level=warning"],
                   check=True, capture_output=True, text=True, timeout=120)
    return out


def make_toy_view(tmp_path: Path) -> type[LmqlWidget]:
    """A new view: its JS (tests/notebook/toy/toy_view.js, on the shared base) bundled,
    and one Python class. Nothing in lmql_nb is edited."""
    esm = bundle(TOY / "toy_view.js", tmp_path / "toy_view.js")

    class ToyView(LmqlWidget):
        view = "toy_view"
        columns: ClassVar[dict[str, str]] = {"word": "str", "score": "f8"}
        _esm = esm

        def __init__(self, words: dict[str, float]):
            super().__init__()
            self.words = words
            self.data = self.pack({"word": list(words),
                                   "score": np.array(list(words.values()), dtype="<f8")})

        def static_html(self) -> str:
            from lmql_nb.notebook.views import static
            return "".join(static.coloured(static.text_html(w), s, f"score {s}")
                           for w, s in self.words.items())

    return ToyView


