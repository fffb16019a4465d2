"""LMQL's own language test suite (`upstream/`, unchanged) run against lmql_nb.

Each top-level `upstream/test_*.py` is collected as LMQL's runner (`run_all_tests`) runs
it: the file is imported (its module-level code runs), then every global whose name
starts with `test` is called; an async function or an async query function runs to
completion on an event loop. A file with no `test` globals is one test: its import
(`<module>`). `queryargs/` is collected through `test_query_args.py`, which imports its
tests, as in LMQL. `lmql_shim` makes `import lmql` mean lmql_nb and swaps the models.

Tests whose assertion is one particular model's text are listed in `set_asides.py`: they
run, and pass only if the one thing that fails is that assertion; the property each
checks is restated on Gemma in `test_restated.py`.
"""

from __future__ import annotations

import ast
import os
import asyncio
import importlib
import inspect
import sys
import types
from pathlib import Path
from typing import Any, Optional

import pytest

HERE = Path(__file__).parent
UPSTREAM = HERE / "upstream"
MODULE_TEST = "<module>"


def pytest_ignore_collect(collection_path: Path, config: Any) -> Optional[bool]:
    if collection_path == UPSTREAM / "queryargs":
        return True  # collected through test_query_args.py, as LMQL's runner does
    return None


def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> Any:
    if module_path.parent == UPSTREAM:
        return UpstreamFile.from_parent(parent, path=module_path)
    return None


def test_names(path: Path) -> list[str]:
    """The `test*` globals the file will have, in order (what `run_all_tests` calls), read
    from its source: definitions, assignments and imports, following `import *` from
    `lmql.tests.<module>`."""
    names: list[str] = []

    def add(name: str) -> None:
        if name.startswith("test") and name not in names:
            names.append(name)

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    add(target.id)
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("lmql.tests."):
            for alias in node.names:
                if alias.name == "*":
                    source = UPSTREAM.joinpath(*node.module.split(".")[2:]).with_suffix(".py")
                    for name in test_names(source):
                        add(name)
                else:
                    add(alias.asname or alias.name)
    return names


class UpstreamFile(pytest.Module):
    """One upstream file; imported (through the shim) when its first test runs."""

    def _getobj(self) -> types.ModuleType:
        return types.ModuleType(self.path.stem)  # the real one is imported by `load`

    def collect(self) -> list[pytest.Item]:
        names = test_names(self.path) or [MODULE_TEST]
        return [pytest.Function.from_parent(self, name=name, callobj=_runner(self, name))
                for name in names]

    def load(self) -> types.ModuleType:
        """The file imported as `lmql.tests.<name>` (once; an import error every time)."""
        cached = getattr(self, "_loaded", None)
        if isinstance(cached, BaseException):
            raise cached
        if cached is not None:
            return cached
        try:
            module = importlib.import_module(f"lmql.tests.{self.path.stem}")
        except BaseException as error:
            self._loaded = error
            raise
        self._loaded = module
        return module


def _runner(file: UpstreamFile, name: str) -> Any:
    from set_asides import SET_ASIDES

    key = f"{file.path.name}::{name}"
    set_aside = SET_ASIDES.get(key)

    def run(lmql_upstream: Any) -> None:
        if set_aside is None:
            _run_like_lmql(file, name)
            return
        with pytest.raises(AssertionError) as failure:
            _run_like_lmql(file, name)
        lines = [entry.lineno + 1 for entry in failure.traceback
                 if str(entry.path) == str(file.path)]
        assert lines and lines[-1] == set_aside.line and set_aside.expect in str(
            failure.value), (f"{key} is set aside because its assertion at line "
                             f"{set_aside.line} compares one model's text, but it failed "
                             f"otherwise (line {lines[-1] if lines else '?'}): {failure.value}")

    run.__name__ = name
    run.__doc__ = f"LMQL's {key}, run unchanged" + (
        f" (model text: {set_aside.property}; restated in {set_aside.restated})"
        if set_aside else "")
    return run


def _run_like_lmql(file: UpstreamFile, name: str) -> None:
    """Import the file and call its global `name` as LMQL's `run_all_tests` does."""
    module = file.load()
    if name == MODULE_TEST:
        return
    target = getattr(module, name)
    if getattr(target, "__lmql_query__", False) and target.is_async:
        asyncio.run(_awaited(target()))
    elif inspect.iscoroutinefunction(target):
        asyncio.run(target())
    else:
        target()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


@pytest.fixture(scope="package")
def lmql_upstream(tiny_gpt2_path: Path, tiny_llama_path: Path) -> Any:
    """`import lmql` means lmql_nb, with LMQL's test models swapped (see lmql_shim)."""
    import lmql_nb
    import lmql_shim

    models = lmql_shim.Models(lmql_nb.model(lmql_shim.GEMMA, **lmql_shim.GEMMA_OPTIONS),
                              lmql_nb.model(f"local:{tiny_gpt2_path}"),
                              lmql_nb.model(f"local:{tiny_llama_path}"))
    lmql_shim.install(models)
    try:
        yield models
    finally:
        lmql_shim.uninstall()
        lmql_nb.api._default = None  # test_api.py sets the default model
        for module in [m for m in sys.modules if m.startswith("lmql.tests")]:
            sys.modules.pop(module, None)


LAST = "test_this_run_matches_the_recorded_run"


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item.parent, UpstreamFile):
            item.add_marker(pytest.mark.gemma)
            item.add_marker(pytest.mark.llamacpp)
    # the check against the recorded run comes after everything else of the session
    last = [item for item in items if item.name == LAST]
    items[:] = [item for item in items if item.name != LAST] + last


# -- the run's outcomes: what scripts/lmql_suite_table.py renders as the README's table ----

from suite_results import RESULTS_ENV, outcome_id, outcomes  # noqa: E402

_config: list[Any] = []


def pytest_configure(config: Any) -> None:
    _config.append(config)


def pytest_runtest_logreport(report: Any) -> None:
    key = outcome_id(report.nodeid)
    if key is None or not _config:
        return
    from set_asides import SET_ASIDES

    recorded = outcomes(_config[-1])
    if report.failed:
        recorded[key] = "failed"
    elif report.when == "call" and recorded.get(key) != "failed":
        recorded[key] = "set aside" if key in SET_ASIDES else "passed"


def pytest_sessionfinish(session: Any) -> None:
    path = os.environ.get(RESULTS_ENV)
    recorded = outcomes(session.config)
    if path and recorded:
        import json

        Path(path).write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
