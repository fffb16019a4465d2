"""The README's "Supported LMQL" table and docs/lmql-suite-status.md's tables, generated
from a run of LMQL's own test suite (tests/lmql_suite).

    python scripts/lmql_suite_table.py --run    # run the suite, record it, rewrite both
    python scripts/lmql_suite_table.py          # rewrite both from the recorded run
    python scripts/lmql_suite_table.py --check  # exit 1 if either is out of date

The run's outcome per test is recorded in tests/lmql_suite/results.json (written by the
suite's conftest when LMQL_SUITE_RESULTS names a file). The tables sit between
`<!-- lmql-suite: NAME -->` and `<!-- /lmql-suite -->` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "lmql_suite"
RESULTS = SUITE / "results.json"
README = ROOT / "README.md"
STATUS = ROOT / "docs" / "lmql-suite-status.md"

#: LMQL's test files, each as the feature it exercises (in the README's order)
FEATURES = {
    "test_api.py": "Generations API: `generate`, `score`, `LLM` objects",
    "test_minimal_syntax.py": "query programs: full, minimal and one-line forms, `F`",
    "test_query_args.py": "query arguments, `run`/`run_sync`, `input_variables`",
    "test_scoping.py": "scoping: prologue, captured names, `output_variables`",
    "test_return_value.py": "return values (no `return`, bare `return`, `None`)",
    "test_escaping.py": "prompt strings: `[[ ]]`, `{{ }}` escapes, `context.prompt`",
    "test_qstrings.py": "prompt-string parsing: holes, types, decoders, decorators",
    "test_f.py": "`lmql.F` and `lmql.algorithms.map`",
    "test_query_builder.py": "`QueryBuilder`",
    "test_eq.py": "constraints: `==` on values and lengths",
    "test_stopping.py": "constraints: stopping phrases with length bounds",
    "test_orop.py": "constraints: `or`",
    "test_distribution.py": "`distribution` clauses",
    "test_beam_in.py": "`beam` with choices",
    "test_noprompt.py": "programs without a prompt, `beam`, nested choices",
    "test_nested_queries.py": "nested queries",
    "test_nested_back2back.py": "nested queries with chat roles",
    "test_decorators.py": "hole decorators, `lmql.decorators`",
    "test_back2back_caching.py": "back-to-back holes, `traced`/`certificate`",
    "test_local_model_python.py": "models in programs: `from`, `model=`, objects",
    "test_multi_tokenizer.py": "several models and tokenizers in one process",
    "test_multibyte_local_models.py": "multi-byte characters",
}


def load() -> dict[str, str]:
    """The recorded run: `file::test` -> "passed" / "set aside" / "failed"."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def _by_file(results: dict[str, str]) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {name: [] for name in FEATURES}
    for key, outcome in results.items():
        files.setdefault(key.split("::", 1)[0], []).append(outcome)
    return files


def _status(outcomes: list[str]) -> str:
    passed = sum(o != "failed" for o in outcomes)
    aside = sum(o == "set aside" for o in outcomes)
    if not outcomes:
        return "not run"
    note = f" ({aside} on one model's text, restated)" if aside else ""
    if passed == len(outcomes):
        return f"passes: {passed} of {len(outcomes)}{note}"
    return f"**{len(outcomes) - passed} of {len(outcomes)} fail**{note}"


def readme_table(results: dict[str, str]) -> str:
    """The README's table: one row per feature."""
    rows = ["| LMQL feature (LMQL's test file) | LMQL's tests on lmql_nb |", "|---|---|"]
    for name, outcomes in _by_file(results).items():
        rows.append(f"| {FEATURES.get(name, name)} (`{name}`) | {_status(outcomes)} |")
    total = len(results)
    passed = sum(o != "failed" for o in results.values())
    rows.append("")
    rows.append(f"{passed} of {total} of LMQL's language tests pass, run unchanged (models "
                "swapped for the embedded Gemma).")
    return "\n".join(rows) + "\n"


def status_tables(results: dict[str, str]) -> str:
    """docs/lmql-suite-status.md's per-file table and its list of failing tests."""
    sys.path.insert(0, str(SUITE))
    import set_asides
    rows = ["| file | tests | pass | set aside (model text) | fail |", "|---|---|---|---|---|"]
    for name, outcomes in _by_file(results).items():
        rows.append(f"| {name} | {len(outcomes)} | {outcomes.count('passed')} | "
                    f"{outcomes.count('set aside')} | {outcomes.count('failed')} |")
    values = list(results.values())
    rows.append(f"| **total** | **{len(values)}** | **{values.count('passed')}** | "
                f"**{values.count('set aside')}** | **{values.count('failed')}** |")
    failing = [key for key, outcome in results.items() if outcome == "failed"]
    rows += ["", "Failing:" if failing else "No test fails."]
    rows += [f"- `{key}`" for key in failing]
    rows += ["", "Set aside (the assertion compares one model's text; the property it "
             "checks is restated on Gemma):", "",
             "| LMQL test | what it checks beyond the text | restated in test_restated.py |",
             "|---|---|---|"]
    for key, aside in sorted(set_asides.SET_ASIDES.items()):
        rows.append(f"| `{key}` | {aside.property} | `{aside.restated}` |")
    return "\n".join(rows) + "\n"


def render(path: Path, blocks: dict[str, str], marker: str = "lmql-suite") -> str:
    """`path`'s text with each generated block (between `<!-- MARKER: NAME -->` and
    `<!-- /MARKER -->`) replaced by `blocks[NAME]`."""
    text = path.read_text()
    pattern = re.compile(rf"(<!-- {marker}: (\w+) -->\n)(.*?)(<!-- /{marker} -->)", re.S)

    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in blocks:
            raise SystemExit(f"{path}: unknown generated block {name!r}")
        return match.group(1) + blocks[name] + match.group(4)

    return pattern.sub(replace, text)


def run_suite() -> None:
    env = dict(os.environ, LMQL_SUITE_RESULTS=str(RESULTS),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    str(SUITE / "upstream")], cwd=ROOT, env=env, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="run the suite and record it first")
    parser.add_argument("--check", action="store_true", help="exit 1 if out of date")
    args = parser.parse_args()
    if args.run:
        run_suite()
    results = load()
    blocks = {"table": readme_table(results), "status": status_tables(results)}
    stale = []
    for path in (README, STATUS):
        new = render(path, blocks)
        if new != path.read_text():
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run "
              "python scripts/lmql_suite_table.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
