"""Import paths from before the layer folders keep working for one release, with a
DeprecationWarning that names the new path and points at the user's own import line.

Each case runs in a fresh interpreter (a module warns once, when first imported), from
a script file, as a user's program would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

MOVED = [
    ("lmql_nb.results", "lmql_nb.core.results", "Generation"),
    ("lmql_nb.scoring", "lmql_nb.core.scoring", "ScoringResult"),
    ("lmql_nb.registry", "lmql_nb.backends.registry", "register_backend"),
    ("lmql_nb.llm", "lmql_nb.generations.llm", "LLM"),
]


def _run(tmp_path, code: str, *flags: str) -> subprocess.CompletedProcess:
    script = tmp_path / "user_program.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, *flags, str(script)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("old, new, name", MOVED)
def test_an_old_path_reexports_the_new_one_and_warns_at_the_users_line(tmp_path, old, new,
                                                                        name):
    result = _run(tmp_path, f"""
        import importlib
        import json
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from {old} import {name} as through_old
        new = importlib.import_module("{new}")
        print(json.dumps({{
            "same": through_old is getattr(new, "{name}"),
            "warnings": [(w.category.__name__, str(w.message), w.filename, w.lineno)
                         for w in caught],
        }}))
    """)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["same"]
    deprecations = [w for w in report["warnings"] if w[0] == "DeprecationWarning"]
    assert len(deprecations) == 1, report["warnings"]
    _, message, filename, line = deprecations[0]
    assert old in message and new in message
    # attributed to the import in the user's file, not to importlib's frames
    assert filename == str(tmp_path / "user_program.py") and line == 8


@pytest.mark.parametrize("old, new, name", MOVED[:1])
def test_python_shows_the_warning_by_default(tmp_path, old, new, name):
    # Python shows DeprecationWarnings by default only when __main__ triggered them: the
    # warning must be attributed to the importing script for a user to ever see it
    result = _run(tmp_path, f"from {old} import {name}\n")
    assert result.returncode == 0, result.stderr
    assert "DeprecationWarning" in result.stderr and new in result.stderr


def test_the_package_and_its_new_paths_import_without_a_deprecation(tmp_path):
    modules = ["lmql_nb"] + [new for _, new, _ in MOVED]
    imports = "".join(f"    import {m}\n" for m in modules)
    result = _run(tmp_path, "import warnings\n"
                  "with warnings.catch_warnings(record=True) as caught:\n"
                  "    warnings.simplefilter('always')\n" + imports +
                  "print([str(w.message) for w in caught if 'lmql_nb' in str(w.message)])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
