"""Real checks on the embedded Gemma 3 270M (converted once per machine, then cached)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import lmql_nb

import reference

pytestmark = pytest.mark.gemma

PROMPT = "The capital of France is"
CITIES = [" Paris", " London", " Berlin"]
# transformers' own forward pass on this model, joint tokenisation (../shared/GUIDE.md)
GUIDE_SCORES = [-2.4768, -6.6965, -8.2410]


def test_paris_wins_with_the_reference_numbers(gemma):
    result = gemma.score_sync(PROMPT, CITIES, cache=False)
    assert result.argmax() == " Paris"
    np.testing.assert_allclose(result.scores(), GUIDE_SCORES, atol=1e-3)
    folder = Path(gemma.backend.location())
    expected = [reference.continuation_logprob(folder, PROMPT, city) for city in CITIES]
    np.testing.assert_allclose(result.scores(), expected, atol=1e-4)


def test_the_boundary_does_not_change_the_score(gemma):
    """LMQL 0.7.3 tokenises prompt and value apart and gets -19.5 for this."""
    spaced = gemma.score_sync(PROMPT + " ", ["Paris"], cache=False)
    assert spaced.scores()[0] == pytest.approx(GUIDE_SCORES[0], abs=1e-3)


def test_greedy_equals_transformers_generate(gemma):
    folder = Path(gemma.backend.location())
    assert gemma.generate_sync(PROMPT, max_tokens=12, cache=False) == \
        reference.greedy(folder, PROMPT, 12)


def test_default_model_generates_and_scores_without_configuration(monkeypatch):
    from lmql_nb import api

    monkeypatch.setattr(api, "_default", None)
    monkeypatch.delenv("LMQL_NB_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("LMQL_NB_CACHE_DIR", raising=False)  # the real, already converted cache
    text = lmql_nb.generate_sync(PROMPT, max_tokens=4)
    assert isinstance(text, str) and text
    assert lmql_nb.score_sync(PROMPT, CITIES).argmax() == " Paris"


def test_a_gguf_file_converts_once_atomically_and_scores_like_the_reference(gemma, tmp_path,
                                                                             monkeypatch):
    """`local:<file>.gguf`: converted into the cache through a temporary folder; a
    half-written folder (no completion marker) is rebuilt, never trusted."""
    from lmql_nb.backends.transformers.conversion import MARKER
    from lmql_nb.backends.embedded import embedded_gguf

    monkeypatch.setenv("LMQL_NB_CACHE_DIR", str(tmp_path / "cache"))
    source = embedded_gguf()
    gguf = tmp_path / "my-model.gguf"
    os.symlink(source, gguf)
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    from lmql_nb.core.paths import gguf_key

    stale = models / f"my-model-{gguf_key(gguf)}"
    stale.mkdir()
    (stale / "config.json").write_text("{half written")
    llm = lmql_nb.model(f"local:{gguf}")
    result = llm.score_sync(PROMPT, CITIES, cache=False)
    np.testing.assert_allclose(result.scores(), GUIDE_SCORES, atol=1e-3)
    folders = [p for p in models.iterdir()]
    assert folders == [stale]  # no temporary folder left behind
    assert (stale / MARKER).is_file()
    shutil.rmtree(tmp_path / "cache")
