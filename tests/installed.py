"""Optional packages that the test command installs (the dev and llamacpp extras)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def dev_package(name: str) -> ModuleType:
    """The module `name`: `scripts/test.sh` installs it, so under CI (where `CI` is set)
    a missing one is an import error, a failure; elsewhere the test is skipped."""
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{name} is not installed")
