"""The README's option tables are the options classes' own declarations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_option_tables_are_up_to_date():
    text = (ROOT / "README.md").read_text()
    for name in ("lmql_nb.core.options.GenerateOptions", "lmql_nb.backends.openai.OpenAIOptions",
                 "lmql_nb.backends.transformers.backend.TransformersOptions",
                 "lmql_nb.backends.llamacpp.backend.LlamaCppOptions"):
        assert f"<!-- options-table: {name} -->" in text
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_options.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
