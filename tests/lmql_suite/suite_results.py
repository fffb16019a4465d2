"""This session's outcome of each of LMQL's tests (recorded by conftest.py), which
scripts/lmql_suite_table.py renders as the README's "Supported LMQL" table."""

from __future__ import annotations

from typing import Any, Optional

import pytest

RESULTS_ENV = "LMQL_SUITE_RESULTS"  # a path: write this run's outcomes there (JSON)
OUTCOMES = pytest.StashKey[dict]()


def outcomes(config: Any) -> dict[str, str]:
    """This session's outcome per upstream test (`file::test` -> "passed", "set aside"
    (passed as recorded in set_asides.py) or "failed")."""
    if OUTCOMES not in config.stash:
        config.stash[OUTCOMES] = {}
    return config.stash[OUTCOMES]


def outcome_id(nodeid: str) -> Optional[str]:
    """`file::test` for an upstream test's node id, else None."""
    marker = "lmql_suite/upstream/"
    return nodeid.split(marker, 1)[1] if marker in nodeid else None
