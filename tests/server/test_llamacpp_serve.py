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


def _log_softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def test_an_openai_client_gets_llama_cpp_numbers_by_hand(served):
    """The server reaches llama.cpp only through the TokenIdBackend protocol; what the
    openai SDK gets equals llama-cpp-python's own Llama run by hand: a greedy completion
    (prompt in one decode call, then a token per call, as the server decodes one row)
    and the prompt's own log-probabilities (echo; first token, then the rest)."""
    import llama_cpp
    import openai

    from lmql_nb.backends.embedded import embedded_gguf

    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=512, logits_all=True,
                              flash_attn=True, n_threads=1, verbose=False)
    ids = by_hand.tokenize(PROMPT.encode())
    by_hand.reset()
    by_hand.eval(ids)
    chosen, chosen_logprobs = [], []
    for _ in range(6):
        logprobs = _log_softmax(by_hand.scores[by_hand.n_tokens - 1])
        token = int(logprobs.argmax())
        chosen.append(token)
        chosen_logprobs.append(logprobs[token])
        by_hand.eval([token])
    by_hand.reset()
    by_hand.eval(ids[:1])
    by_hand.eval(ids[1:])
    prompt_logprobs = [_log_softmax(by_hand.scores[i])[ids[i + 1]] for i in range(len(ids) - 1)]

    with openai.OpenAI(api_key=served.api_key, base_url=served.base_url, max_retries=0,
                       timeout=120) as client:
        completion = client.completions.create(model=served.name, prompt=ids, max_tokens=6,
                                               temperature=0, logprobs=1)
        echo = client.completions.create(model=served.name, prompt=ids, max_tokens=0,
                                         echo=True, logprobs=0)
    choice = completion.choices[0]
    assert choice.text == by_hand.detokenize(chosen).decode()
    assert choice.logprobs.token_logprobs == pytest.approx(chosen_logprobs, abs=1e-3)
    echoed = echo.choices[0].logprobs.token_logprobs
    assert echoed[0] is None and len(echoed) == len(ids)
    assert echoed[1:] == pytest.approx(prompt_logprobs, abs=1e-3)
