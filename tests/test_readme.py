"""The README is the front door and docs/ the reference: the README's examples run as
written, in order, in a Jupyter kernel, and print what the README shows; every link
resolves; the generated parts (option tables, command-line help) are current."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_the_generated_parts_are_up_to_date():
    text = "".join(page.read_text() for page in _pages())
    for name in ("lmql_nb.core.options.GenerateOptions", "lmql_nb.backends.openai.OpenAIOptions",
                 "lmql_nb.backends.transformers.backend.TransformersOptions",
                 "lmql_nb.backends.llamacpp.backend.LlamaCppOptions"):
        assert f"<!-- options-table: {name} -->" in text
    for command in ("generate", "score", "demo", "serve"):
        assert f"<!-- cli-help: {command} -->" in text
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_options.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) < 300, len(lines)
    quickstart = README.read_text().split("## Quickstart", 1)[1]
    first = re.search(r"```bash\n(.*?)```", quickstart, re.S).group(1)
    commands = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert commands[0].startswith('pip install torch==2.13.0 -e ".[all]"'), commands
    assert commands[1] == "bash scripts/test.sh", commands  # what .ci/run calls
    assert len(commands) == 2, commands
    assert "bash scripts/test.sh" in (README.parent / ".ci" / "run").read_text()


def test_every_link_resolves():
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):  # http(s): not checked offline
                continue
            path = target.split("#", 1)[0]
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def _cells(text: str) -> list[tuple[str, str]]:
    """The README's python blocks as kernel cells, in order: a magic block whole; other
    blocks one top-level statement per cell, each with the output the README shows for
    it (the "# ..." lines right below an expression), or None."""
    cells: list[tuple[str, str]] = []
    for block in BLOCK.findall(text):
        if block.lstrip().startswith("%"):
            cells.append((block, ""))
            continue
        lines = block.splitlines()
        tree = compile(block, "<README>", "exec",
                       ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for statement in tree.body:
            first = statement.lineno - 1
            if getattr(statement, "decorator_list", None):
                first = statement.decorator_list[0].lineno - 1
            source = "\n".join(lines[first:statement.end_lineno])
            shown = []
            for line in lines[statement.end_lineno:]:
                if not line.startswith("# "):
                    break
                shown.append(line[2:])
            expected = "\n".join(shown) if isinstance(statement, ast.Expr) and shown else ""
            cells.append((source, expected))
    return cells


@pytest.mark.gemma
def test_the_readme_examples_run_as_written_and_print_what_it_shows(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "notebook"))
    from nb_helpers import error, execute_cells

    cells = _cells(README.read_text())
    assert any(source.startswith("%%lmql\n") or source.startswith("%%lmql ")
               for source, _ in cells)
    notebook = execute_cells([source for source, _ in cells], ROOT, timeout=900)
    for (source, expected), cell in zip(cells, notebook.cells):
        assert error(cell) is None, (source, error(cell))
        if expected:
            [result] = [o for o in cell.outputs if o.output_type == "execute_result"]
            assert result.data["text/plain"] == expected, source
