"""Fixtures of the notebook-layer tests."""

import pytest


@pytest.fixture(scope="session")
def tiny_llm(tiny_llama_path):
    """The tiny Llama as a user gets it."""
    import lmql_nb

    return lmql_nb.model(f"local:{tiny_llama_path}")
