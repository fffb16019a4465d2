"""LMQL's documentation examples (pages/, unchanged) run from notebooks: see harness.py.

test_docs_kernel.py starts one real kernel per page (marked kernel by its file name in
tests/conftest.py, so the fast tier leaves it out); test_blocks.py checks the record."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
