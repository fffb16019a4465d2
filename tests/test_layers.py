"""The layers hold: checked on the source (scripts/layers.py reads every import, lazy,
relative and type-only ones included), and docs/architecture.md draws them as they are.

The layers, bottom to top, are `scripts/layers.py`'s `LAYERS`. A file imports its own
layer and the layers below; at most two imports run up a layer, each with a comment
that says why; no files import each other round a circle; nothing below the notebook
layer imports it; only the CLI imports the server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import layers  # noqa: E402  (scripts/layers.py)

IMPORTS = layers.imports()

#: circles that other work in flight removes (issue 23); each entry must still exist, so
#: the list only shrinks: remove an entry in the change that breaks its circle
KNOWN_CIRCLES: list[list[str]] = []  # none left: a new one fails the test


def _importers(target: str, found=IMPORTS) -> list[str]:
    return sorted({i.where() for i in found
                   if i.target == target or i.target.startswith(target + ".")})


def test_the_reader_sees_lazy_relative_type_only_and_package_imports():
    by_source = {}
    for i in IMPORTS:
        by_source.setdefault(i.source, []).append(i)
    # lmql_nb/__init__.py imports the notebook layer lazily, relatively
    assert any(i.target == "lmql_nb.notebook.display" and i.lazy
               for i in by_source["lmql_nb"])
    # `from ..core import aio` names the module aio, not only the package
    assert any(i.target == "lmql_nb.core.aio" for i in by_source["lmql_nb.server.bridge"])
    # importing lmql_nb.backends.registry runs lmql_nb/backends/__init__.py first
    assert any(i.target == "lmql_nb.backends" for i in by_source["lmql_nb.api"])


def test_every_file_is_in_a_layer_and_every_import_names_a_file():
    for module in layers._modules():
        layers.layer_of(module)  # raises for a file no layer names
    assert layers.unresolved() == []


def test_no_files_import_each_other_round_a_circle():
    circles = layers.cycles(IMPORTS)
    new = [c for c in circles if c not in KNOWN_CIRCLES]
    assert new == [], "import circles:\n" + "\n".join(" <-> ".join(c) for c in new)
    gone = [c for c in KNOWN_CIRCLES if c not in circles]
    assert gone == [], f"these circles are gone: remove them from KNOWN_CIRCLES: {gone}"


def test_at_most_two_imports_run_up_a_layer_each_saying_why():
    up = layers.upward(IMPORTS)
    assert len(up) <= layers.MAX_UP, "\n".join(i.where() for i in up)
    unexplained = [i.where() for i in up if not i.comment.startswith(layers.UP_MARK)]
    assert unexplained == []


def test_nothing_below_the_notebook_layer_imports_it():
    below = [i for i in IMPORTS if layers.rank(layers.layer_of(i.source))
             < layers.rank("notebook")]
    assert _importers("lmql_nb.notebook", below) == []


def test_nothing_but_the_cli_imports_the_server():
    outside = [i for i in IMPORTS if not i.source.startswith("lmql_nb.server")
               and i.source != "lmql_nb.cli"]
    assert _importers("lmql_nb.server", outside) == []


def test_the_bottom_layers_import_no_backend():
    bottom = [i for i in IMPORTS if layers.layer_of(i.source) in ("errors", "core",
                                                                    "tokenization")]
    for above in ("lmql_nb.backends", "lmql_nb.generations", "lmql_nb.query", "lmql_nb.api"):
        assert _importers(above, bottom) == []


def test_the_architecture_page_is_what_the_code_draws():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "layers.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    page = (ROOT / "docs" / "architecture.md").read_text()
    # each folder is on the page with its own line
    for init in sorted((ROOT / "lmql_nb").rglob("__init__.py")):
        folder = init.parent.relative_to(ROOT / "lmql_nb").as_posix()
        if folder != ".":
            assert f"`{folder}/`" in page, folder


def test_the_version_is_stated_once_for_the_package():
    import re

    import lmql_nb
    from lmql_nb.core.version import VERSION

    project = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert project is not None and lmql_nb.__version__ == VERSION == project.group(1)


def test_importing_the_package_loads_no_torch_transformers_or_llama_cpp():
    code = ("import sys, lmql_nb; lmql_nb.model('local:gemma-3-270m'); "
            "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp', 'openai') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
