"""What LMQL's own test files need to run unchanged against lmql_nb.

`install(models)` makes `import lmql` (and `import lmql.<sub>`) give lmql_nb itself (the
same module objects, not copies), and swaps the models the files name for models that
load here (`SWAPS`). Besides that, the only stand-ins are LMQL's test plumbing:

- `lmql.tests.*` are the upstream files themselves (the `upstream/` folder);
- `lmql.tests.expr_test_utils` / `expr_test_utils`: LMQL's test runner module. Its
  `run_all_tests(globals())` runs each `test*` global and exits; here pytest runs them
  (see conftest.py, which calls them as `run_all_tests` would), so the stand-in does
  nothing when a file calls it at import time;
- `lmql.runtime.bopenai.get_stats`: LMQL's OpenAI request counter, imported by one file
  that never calls it;
- `lmql.language.qstrings`: LMQL's prompt-string parser classes, which `test_qstrings.py`
  compares parses against. The stand-in builds them from lmql_nb's own parser
  (`lmql_nb.query.strings`), so that test checks lmql_nb's parser.

Nothing else of the package is replaced: what a test calls is lmql_nb's own code.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any, Optional

UPSTREAM = Path(__file__).parent / "upstream"

#: LMQL's model ids in the upstream files -> what runs them here
#: ("gemma": the embedded Gemma 3 270M; "tiny-llama": the tests' tiny Llama, for the one
#: file that mixes a GPT-2 and a Llama tokenizer in one process; "tiny-gpt2": the tests'
#: tiny GPT-2, for LMQL's own tiny GPT-2)
SWAPS = {
    "random": "gemma",                      # LMQL's seeded random-token model
    "chatgpt": "gemma",                     # OpenAI (no network here)
    "openai/text-davinci-003": "gemma",
    "gpt2": "gemma",                        # GPT-2 from the hub (no hub here)
    "local:gpt2": "gemma",
    "local:llama.cpp:/lmql/llama-2-7b-chat.Q2_K.gguf": "gemma",  # Llama-2 7B chat, GGUF
    "local:sshleifer/tiny-gpt2": "tiny-gpt2",
}
#: the embedded Gemma as llama.cpp runs it (the same GGUF), with a 512-token context: a
#: hole whose stop phrase Gemma never writes (LMQL's tests stop on words its random
#: model happened to produce) ends at the context's end within seconds, rather than at
#: LMQL's max_len of 2048 tokens minutes later
GEMMA = "llama.cpp:gemma-3-270m"
GEMMA_OPTIONS = {"n_ctx": 512}
#: a `random` model built with a Llama tokenizer
LLAMA_TOKENIZERS = {"AyyYOO/Luna-AI-Llama2-Uncensored-FP16-sharded"}
#: LMQL's model options that say how LMQL hosts or seeds the swapped model
HOSTING_OPTIONS = {"seed", "tokenizer", "silent", "cuda", "inprocess"}


@dataclasses.dataclass
class Models:
    """The models the swaps give (LLM instances)."""

    gemma: Any
    tiny_gpt2: Any
    tiny_llama: Any


_models: Optional[Models] = None
_swaps: dict[str, str] = SWAPS
_saved: dict[str, Any] = {}


def swapped(model_id: Any, **options: Any) -> Any:
    """`lmql.model(model_id, **options)` with LMQL's test models swapped (see `SWAPS`);
    any other id goes to lmql_nb's own `model`."""
    assert _models is not None, "lmql_shim.install() first"
    if isinstance(model_id, str) and model_id in _swaps:
        unknown = set(options) - HOSTING_OPTIONS
        if unknown:
            raise TypeError(f"the swapped model {model_id!r} got options the harness does "
                            f"not know: {sorted(unknown)}")
        if model_id == "random" and options.get("tokenizer") in LLAMA_TOKENIZERS:
            return _models.tiny_llama
        return {"gemma": _models.gemma, "tiny-gpt2": _models.tiny_gpt2,
                "tiny-llama": _models.tiny_llama}[_swaps[model_id]]
    return _saved["model"](model_id, **options)


def _expr_test_utils() -> types.ModuleType:
    module = types.ModuleType("expr_test_utils")

    def run_all_tests(g: dict) -> None:
        """pytest runs the tests (conftest.py), as LMQL's runner would."""

    module.run_all_tests = run_all_tests  # type: ignore[attr-defined]
    return module


def _bopenai() -> types.ModuleType:
    module = types.ModuleType("lmql.runtime.bopenai")

    def get_stats() -> Any:
        raise NotImplementedError("LMQL's OpenAI statistics are not part of lmql_nb")

    module.get_stats = get_stats  # type: ignore[attr-defined]
    return module


def _package(name: str, path: Optional[Path] = None) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(path)] if path else []  # type: ignore[attr-defined]
    return module


def _standins() -> dict[str, types.ModuleType]:
    from qstrings_standin import qstrings_module

    utils = _expr_test_utils()
    return {
        "lmql.tests": _package("lmql.tests", UPSTREAM),
        "lmql.tests.expr_test_utils": utils,
        "expr_test_utils": utils,
        "lmql.runtime": _package("lmql.runtime"),
        "lmql.runtime.bopenai": _bopenai(),
        "lmql.language": _package("lmql.language"),
        "lmql.language.qstrings": qstrings_module(),
    }


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`lmql.<sub>` imports give `lmql_nb.<sub>` (the very same module object)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not fullname.startswith("lmql.") or fullname.startswith("lmql.tests."):
            return None  # lmql.tests.<file>: the upstream files, found on lmql.tests' path
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system returns what sys.modules holds after this
        sys.modules[module.__name__] = importlib.import_module("lmql_nb" + module.__name__[4:])


_finder = _Alias()


def install(models: Models, swaps: Optional[dict[str, str]] = None) -> None:
    """Make `import lmql` mean lmql_nb, with LMQL's test models swapped (`swaps`: model id
    -> "gemma", "tiny-gpt2" or "tiny-llama"; by default `SWAPS`, the test files' ids)."""
    global _models, _swaps
    import lmql_nb
    import lmql_nb.api

    _models = models
    _swaps = SWAPS if swaps is None else swaps
    _saved["model"] = lmql_nb.api.model
    _saved["modules"] = {name: sys.modules.get(name) for name in ("lmql", *_standins())}
    lmql_nb.api.model = swapped  # ids in programs (`from "random"`) resolve through it
    lmql_nb.model = swapped  # type: ignore[assignment]
    sys.modules["lmql"] = lmql_nb
    sys.modules.update(_standins())
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo `install`, and forget the upstream modules imported meanwhile."""
    import lmql_nb
    import lmql_nb.api

    if "model" not in _saved:
        return
    lmql_nb.api.model = _saved["model"]
    lmql_nb.model = _saved.pop("model")  # type: ignore[assignment]
    sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "lmql" or n.startswith("lmql.")]:
        del sys.modules[name]
    for name, module in _saved.pop("modules").items():
        if module is not None:
            sys.modules[name] = module
        else:
            sys.modules.pop(name, None)
    for attribute in ("tests", "runtime", "language"):
        if isinstance(getattr(lmql_nb, attribute, None), types.ModuleType) and \
                getattr(lmql_nb, attribute).__name__.startswith("lmql."):
            delattr(lmql_nb, attribute)
