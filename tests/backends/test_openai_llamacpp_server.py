"""llama.cpp's server (llama-cpp-python) as a third-party OpenAI-compatible peer.

Skipped when llama_cpp is not installed, but never under CI, where that is a failure
(CI runs pip install "llama-cpp-python[server]", a compile of about 10 minutes on 2 cores).
It serves the embedded model's GGUF directly.
Expected values come from the server's own JSON, fetched with plain httpx.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

import lmql_nb
from lmql_nb.errors import ScoringNotSupported

from installed import dev_package

dev_package("llama_cpp")

pytestmark = pytest.mark.timeout(180)

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def llamacpp_server():
    """`python -m llama_cpp.server` on the embedded GGUF, on a free port of 127.0.0.1."""
    import httpx

    from lmql_nb.backends.embedded import embedded_gguf

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
         "--model_alias", "gemma", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "512", "--n_threads", "2", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp's server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("llama.cpp's server did not start within 90 s")
        time.sleep(0.25)
    yield base_url
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(15)


@pytest.fixture(scope="module")
def gemma_over_http(llamacpp_server):
    return lmql_nb.model("openai/gemma", base_url=llamacpp_server, timeout=60)


def test_generation_with_logprobs_matches_the_servers_json(llamacpp_server, gemma_over_http):
    import httpx

    raw = httpx.post(f"{llamacpp_server}/completions", timeout=60, json={
        "model": "gemma", "prompt": PROMPT, "max_tokens": 4, "temperature": 0,
        "logprobs": 5, "repeat_penalty": 1.0}).json()["choices"][0]  # no hidden penalty
    result = gemma_over_http.generate_sync(PROMPT, max_tokens=4, return_details=True,
                                           top_logprobs=5, cache=False)
    assert result.text == raw["text"]
    assert result.text == " the capital of the"  # Gemma's greedy text (README's demo)
    assert [t.text for t in result.tokens] == raw["logprobs"]["tokens"]
    assert [t.logprob for t in result.tokens] == pytest.approx(
        raw["logprobs"]["token_logprobs"], abs=1e-5)
    first = result.tokens[0]
    assert [a.text for a in first.top] == sorted(raw["logprobs"]["top_logprobs"][0],
                                                 key=lambda t: -raw["logprobs"]["top_logprobs"][0][t])
    assert " Paris" in [a.text for a in first.top[:3]]
    assert first.rank == 1


def test_streaming_with_logprobs(gemma_over_http):
    seen = []
    result = gemma_over_http.generate_sync(PROMPT, max_tokens=3, return_details=True,
                                           cache=False, on_token=lambda i, t: seen.append(t))
    assert list(result.tokens) == seen and len(seen) == 3
    assert "".join(t.text for t in seen) == result.text


def test_sampling_n(gemma_over_http):
    texts = gemma_over_http.generate_sync(PROMPT, max_tokens=6, decoder="sample", n=2,
                                          temperature=1.0, seed=1, cache=False)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_exact_scoring_is_a_clear_error(gemma_over_http):
    with pytest.raises(ScoringNotSupported) as error:
        gemma_over_http.score_sync(PROMPT, [" Paris", " London"])
    message = str(error.value)
    assert "no /tokenize endpoint" in message
    assert "vLLM" in message and "lmql_nb serve" in message
    assert "first-token-approximation" in message


def test_first_token_approximation_ranks_paris_first(llamacpp_server):
    approx = lmql_nb.model("openai/gemma", base_url=llamacpp_server,
                           scoring="first-token-approximation")
    with pytest.warns(UserWarning, match="first-token approximation"):
        result = approx.score_sync(PROMPT, [" Paris", " London", " Berlin"], cache=False)
    assert result.argmax() == " Paris"
    assert result.tokens[0] == ["≈ Paris"]


def test_constraints_it_would_ignore_are_refused(gemma_over_http):
    with pytest.raises(ValueError, match="rather than silently unenforced"):
        gemma_over_http.generate_sync(PROMPT, max_tokens=4, choices=[" Paris", " Rome"])
    with pytest.raises(ValueError, match="beam search needs"):
        gemma_over_http.generate_sync(PROMPT, max_tokens=4, decoder="beam", n=2)
    stopped = gemma_over_http.generate_sync(PROMPT, max_tokens=6, stops_before=[" of"],
                                            cache=False)
    assert stopped == " the capital"


def test_penalties_it_applies_are_sent_and_repetition_penalty_is_refused(llamacpp_server,
                                                                         gemma_over_http):
    """llama.cpp's server takes OpenAI's frequency_penalty and presence_penalty: lmql_nb's
    result is the server's own JSON for them (and not its text without them).
    repetition_penalty is vLLM's extension, which it would ignore (it has its own
    repeat_penalty): refused before any request."""
    import httpx

    penalties = dict(frequency_penalty=1.0, presence_penalty=0.5)
    raw = httpx.post(f"{llamacpp_server}/completions", timeout=60, json={
        "model": "gemma", "prompt": PROMPT, "max_tokens": 16, "temperature": 0,
        "repeat_penalty": 1.0, **penalties}).json()["choices"][0]
    got = gemma_over_http.generate_sync(PROMPT, max_tokens=16, cache=False, **penalties)
    assert got == raw["text"]
    assert got != gemma_over_http.generate_sync(PROMPT, max_tokens=16, cache=False)
    with pytest.raises(ValueError, match="repetition_penalty is vLLM's extension.*would "
                                         "ignore it"):
        gemma_over_http.generate_sync(PROMPT, max_tokens=4, repetition_penalty=1.3)


def test_argmax_is_the_models_greedy_choice_not_the_servers_penalised_one(llamacpp_server,
                                                                          gemma_over_http):
    """llama-cpp-python's server applies a repeat_penalty of 1.1 by default, which changes
    Gemma's greedy text within 24 tokens here: lmql_nb turns it off, so argmax over the
    server is the in-process llama.cpp's greedy text on the same GGUF."""
    import httpx

    from lmql_nb.backends.embedded import embedded_gguf

    def raw(**extra) -> str:
        return httpx.post(f"{llamacpp_server}/completions", timeout=120, json={
            "model": "gemma", "prompt": PROMPT, "max_tokens": 24, "temperature": 0,
            **extra}).json()["choices"][0]["text"]

    got = gemma_over_http.generate_sync(PROMPT, max_tokens=24, cache=False)
    assert raw() != raw(repeat_penalty=1.0)  # the server's default penalises
    assert got == raw(repeat_penalty=1.0)
    local = lmql_nb.model(f"llama.cpp:{embedded_gguf()}")
    assert got == local.generate_sync(PROMPT, max_tokens=24, cache=False)
