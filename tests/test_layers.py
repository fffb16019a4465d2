"""Dependencies point down: checked on the source, lazy (in-function) imports included.

The notebook layer and the server sit on top of the API; result types, errors and
serialization sit at the bottom. A module that imported upwards would pull a front end
(or a cycle) into code that must not need it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lmql_nb"


def _imports(path: Path) -> set[str]:
    """Every lmql_nb module `path` imports, as dotted names (relative imports resolved)."""
    # the package a relative import starts from (a package's own for its __init__)
    package = ".".join(path.relative_to(PACKAGE.parent).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("lmql_nb")}


def _modules(*relative: str) -> list[Path]:
    paths = []
    for name in relative:
        path = PACKAGE / name
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return paths


def _offenders(paths: list[Path], forbidden: str) -> list[str]:
    return [f"{p.relative_to(PACKAGE.parent)} imports {name}"
            for p in paths for name in sorted(_imports(p))
            if name == forbidden or name.startswith(forbidden + ".")]


def test_the_resolver_sees_lazy_and_relative_imports():
    # the checker itself: lmql_nb/__init__.py imports the notebook layer lazily, relatively
    assert "lmql_nb.notebook.display" in _imports(PACKAGE / "__init__.py")


def test_nothing_below_the_notebook_layer_imports_it():
    below = [p for p in _modules(".") if "notebook" not in p.relative_to(PACKAGE).parts
             and p != PACKAGE / "__init__.py"]
    assert _offenders(below, "lmql_nb.notebook") == []


def test_nothing_but_the_cli_imports_the_server():
    below = [p for p in _modules(".") if "server" not in p.relative_to(PACKAGE).parts
             and p != PACKAGE / "cli.py"]
    assert _offenders(below, "lmql_nb.server") == []


def test_the_bottom_modules_import_no_backend():
    bottom = _modules("errors.py", "core", "tokenization")
    for above in ("lmql_nb.backends", "lmql_nb.generations", "lmql_nb.query", "lmql_nb.api"):
        assert _offenders(bottom, above) == []
