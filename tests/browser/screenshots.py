"""Where browser tests save their screenshots (a module of its own: test files cannot
import a `conftest`, whose name several test folders share)."""

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
