"""lmql_nb's version (pyproject.toml's `version`; `lmql_nb.__version__`)."""

VERSION = "0.1.0"
