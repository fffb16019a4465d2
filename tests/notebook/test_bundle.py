"""The built widget bundles in lmql_nb/static/ are present and match js/src/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lmql_nb.notebook.views import ScoringHeatmap, TokenView
from lmql_nb.notebook.views.base import STATIC

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"


def test_widgets_load_the_built_files():
    assert STATIC == ROOT / "lmql_nb" / "static"
    assert str(TokenView._esm) == (STATIC / "token_view.js").read_text()
    assert str(ScoringHeatmap._esm) == (STATIC / "heatmap.js").read_text()
    for name in ("token_view.js", "heatmap.js", "standalone.js", "widgets.css"):
        text = (STATIC / name).read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text
        assert "</script" not in text.lower()


def test_bundles_are_up_to_date_with_sources():
    if not (JS / "node_modules" / "esbuild").is_dir() or not shutil.which("node"):
        # in CI (which runs `npm ci` in js/) a missing toolchain is a failure
        (pytest.fail if os.environ.get("CI") else pytest.skip)("run `npm ci` in js/ first")
    result = subprocess.run(["node", "build.mjs", "--check"], cwd=JS, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
