"""The embedded Gemma behind `lmql_nb serve`: the guide's reference numbers over HTTP."""

from __future__ import annotations

import pytest

import lmql_nb

pytestmark = [pytest.mark.gemma, pytest.mark.timeout(600)]

# transformers' own forward pass, joint tokenisation (/work/shared/GUIDE.md)
REFERENCE = {" Paris": -2.4768, " London": -6.6965, " Berlin": -8.2410}


@pytest.fixture(scope="module")
def gemma_server(gemma, server_process):
    # the converted model lives in the real user cache (see the `gemma` fixture)
    server = server_process("local:gemma-3-270m", "gemma", drop_env=("LMQL_NB_CACHE_DIR",))
    yield server
    server.stop()


def test_scores_over_http_equal_the_reference(gemma_server, gemma):
    remote = lmql_nb.model("gemma", endpoint=f"127.0.0.1:{gemma_server.port}",
                           api_key=gemma_server.api_key, timeout=300)
    result = remote.score_sync("The capital of France is", list(REFERENCE), cache=False)
    for value, score in zip(result.continuations, result.scores()):
        assert score == pytest.approx(REFERENCE[value], abs=1e-3)
    greedy = remote.generate_sync("The capital of France is", max_tokens=6,
                                  return_details=True, cache=False)
    expected = gemma.generate_sync("The capital of France is", max_tokens=6,
                                   return_details=True, cache=False)
    assert greedy.text == expected.text
    assert [t.logprob for t in greedy.tokens] == pytest.approx(
        [t.logprob for t in expected.tokens], abs=1e-3)
    assert " Paris" in [a.text for a in greedy.tokens[0].top[:3]]
