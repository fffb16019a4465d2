"""`python -m lmql_nb serve llama.cpp:gemma-3-270m`: the llama.cpp backend over HTTP.

Expected values come from the same model in-process (itself checked against
`llama_cpp.Llama` in tests/test_llamacpp_backend.py).
"""

from __future__ import annotations


import numpy as np
import pytest

import lmql_nb

from installed import dev_package

dev_package("llama_cpp")

pytestmark = pytest.mark.timeout(300)

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def served(server_process):
    server = server_process("llama.cpp:gemma-3-270m", "gemma-q4")
    yield server
    server.stop()


def test_served_llama_cpp_generates_and_scores_as_in_process(served):
    remote = lmql_nb.model("gemma-q4", endpoint=f"127.0.0.1:{served.port}",
                           api_key=served.api_key, timeout=300)
    local = lmql_nb.model("llama.cpp:gemma-3-270m")
    assert remote.generate_sync(PROMPT, max_tokens=12, cache=False) == \
        local.generate_sync(PROMPT, max_tokens=12, cache=False)
    remote_scores = remote.score_sync(PROMPT, [" Paris", " London"], cache=False)
    assert remote_scores.argmax() == " Paris"
    local_scores = local.score_sync(PROMPT, [" Paris", " London"], cache=False)
    assert remote_scores.scores().tolist() == pytest.approx(local_scores.scores().tolist(),
                                                            abs=1e-4)
    # over HTTP a value is scored from the prompt's log-probabilities: the prompt runs
    # whole in one llama_decode call (a cached prefix is reused only when it is the whole
    # prompt), then the value; llama.cpp's numbers on this quantised model depend on that
    # split, so the reference splits alike
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=512, logits_all=True,
                              flash_attn=True, n_threads=1, verbose=False)
    for value, score in zip([" Paris", " London"], remote_scores.scores()):
        ids = by_hand.tokenize((PROMPT + value).encode())
        by_hand.reset()
        by_hand.eval(ids[:-1])
        logits = np.array(by_hand.scores[len(ids) - 2], dtype=np.float64)
        expected = logits[ids[-1]] - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        assert score == pytest.approx(expected, abs=1e-3)
    details = remote.generate_sync(PROMPT, max_tokens=3, return_details=True, top_logprobs=3,
                                   cache=False)
    assert len(details.tokens) == 3 and len(details.tokens[0].top) == 3
