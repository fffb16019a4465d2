"""The README's "Supported LMQL" table and docs/lmql-suite-status.md are generated from a
recorded run of LMQL's suite (tests/lmql_suite/results.json, by
scripts/lmql_suite_table.py): both must be what that run gives, and this session's run of
the suite must match the recorded one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from suite_results import outcomes

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "lmql_suite" / "results.json"


def test_the_generated_tables_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "lmql_suite_table.py"),
                             "--check"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_this_run_matches_the_recorded_run(request):
    """Runs after every other test of the session (see conftest.py): each of LMQL's tests
    that ran in this session has the outcome the table was generated from."""
    recorded = json.loads(RESULTS.read_text())
    ran = outcomes(request.config)
    assert set(ran) <= set(recorded), sorted(set(ran) - set(recorded))
    changed = {key: (recorded[key], now) for key, now in ran.items() if recorded[key] != now}
    assert changed == {}, ("LMQL's suite changed since the table was generated (recorded, "
                           f"now): {changed}; run python scripts/lmql_suite_table.py --run")
