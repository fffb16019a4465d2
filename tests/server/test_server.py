"""The model server through the official `openai` client and plain HTTP.

Expected values come from elsewhere: generations from the same model in this process,
prompt log-probabilities from transformers' own forward pass.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time

import httpx
import pytest


PROMPT = "The capital of France is"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def client(gpt2_server):
    import openai

    with openai.OpenAI(api_key=gpt2_server.api_key, base_url=gpt2_server.base_url, max_retries=0,
                       timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def reference(tiny_gpt2_path):
    """Prompt log-probabilities from transformers directly (not through lmql_nb)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_path).eval()

    def logprobs(ids: list[int]) -> list[float]:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        table = logits.log_softmax(-1)
        return [float(table[i - 1, ids[i]]) for i in range(1, len(ids))]

    return logprobs


def _headers(server) -> dict:
    return {"Authorization": f"Bearer {server.api_key}"}


def test_health_and_models(gpt2_server, client):
    health = httpx.get(f"{gpt2_server.root}/health", timeout=10)  # no key needed
    assert health.status_code == 200 and health.json()["status"] == "ok"
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny-gpt2"]
    assert models.data[0].max_model_len == 128


def test_completion_equals_in_process_generation(client, gpt2_local):
    expected = gpt2_local.generate_sync(PROMPT, max_tokens=12, return_details=True,
                                        top_logprobs=5, cache=False)
    response = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=12,
                                         temperature=0, logprobs=5)
    choice = response.choices[0]
    assert choice.text == expected.text
    assert choice.finish_reason == "length"
    assert choice.logprobs.tokens == [t.text for t in expected.tokens]
    assert choice.logprobs.token_logprobs == pytest.approx([t.logprob for t in expected.tokens],
                                                           abs=1e-4)
    for top, token in zip(choice.logprobs.top_logprobs, expected.tokens):
        alternatives = {}
        for a in token.top:
            alternatives.setdefault(a.text, a.logprob)
        assert sorted(top) == sorted(alternatives) or set(top) == set(alternatives) | {token.text}
        for text, logprob in alternatives.items():
            assert top[text] == pytest.approx(logprob, abs=1e-4)
    assert response.usage.completion_tokens == 12


def test_token_id_prompt_equals_text_prompt(gpt2_server, client):
    ids = client.post(f"{gpt2_server.root}/tokenize", cast_to=object,
                      body={"model": "tiny-gpt2", "prompt": PROMPT})["tokens"]
    by_text = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=8,
                                        temperature=0)
    by_ids = client.completions.create(model="tiny-gpt2", prompt=ids, max_tokens=8,
                                       temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text


def test_echo_scores_equal_transformers(client, reference):
    """echo + max_tokens=0 + logprobs=0 with token-id prompts: vLLM's scoring request."""
    prompts = [[464, 3139, 286], [464, 3139, 318, 12], [464, 30], [64], [464, 3139, 286],
               [7, 8, 9, 10]]  # shared prefixes, one token alone, a repeat, another start
    prompts = [[t % 400 for t in p] for p in prompts]
    response = client.completions.create(model="tiny-gpt2", prompt=prompts, max_tokens=0,
                                         echo=True, logprobs=0)
    assert len(response.choices) == len(prompts)
    for ids, choice in zip(prompts, sorted(response.choices, key=lambda c: c.index)):
        logprobs = choice.logprobs.token_logprobs
        assert len(logprobs) == len(ids) and logprobs[0] is None
        if len(ids) > 1:
            assert logprobs[1:] == pytest.approx(reference(ids), abs=1e-4)
        assert choice.finish_reason == "length"


def test_prompt_logprobs_field(gpt2_server, reference):
    ids = [10, 20, 30, 40]
    body = {"model": "tiny-gpt2", "prompt": ids, "max_tokens": 1, "temperature": 0,
            "prompt_logprobs": 0}
    response = httpx.post(f"{gpt2_server.base_url}/completions", json=body, headers=_headers(gpt2_server),
                          timeout=30).json()
    entries = response["choices"][0]["prompt_logprobs"]
    assert entries[0] is None
    got = [entry[str(token)]["logprob"] for entry, token in zip(entries[1:], ids[1:])]
    assert got == pytest.approx(reference(ids), abs=1e-4)


def test_streaming_equals_non_streaming(client):
    whole = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=10,
                                      temperature=0, logprobs=1)
    chunks = list(client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=10,
                                            temperature=0, logprobs=1, stream=True))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    streamed = [lp for c in chunks if c.choices and c.choices[0].logprobs
                for lp in c.choices[0].logprobs.token_logprobs]
    assert streamed == pytest.approx(whole.choices[0].logprobs.token_logprobs, abs=1e-5)
    assert len(chunks) >= 10  # one event per token, not one at the end
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stop_strings(client):
    whole = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=16,
                                      temperature=0).choices[0].text
    stop = whole[len(whole) // 2:len(whole) // 2 + 2]
    assert stop.strip(), whole
    expected = whole[:whole.index(stop)]
    stopped = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=16,
                                        temperature=0, stop=[stop])
    assert stopped.choices[0].text == expected
    assert stopped.choices[0].finish_reason == "stop"
    streamed = list(client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=16,
                                              temperature=0, stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == expected
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_sampling_n_and_seed(client):
    def sample(seed: int) -> list[str]:
        response = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=8,
                                             temperature=1.0, n=3, seed=seed)
        return [c.text for c in sorted(response.choices, key=lambda c: c.index)]

    first = sample(7)
    assert len(first) == 3
    assert sample(7) == first
    assert len(set(first)) > 1  # three draws, not one copied


def test_chat_completion_uses_the_template(client):
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    chat = client.chat.completions.create(
        model="tiny-gpt2", messages=[{"role": "user", "content": "Hello there"}], max_tokens=6,
        temperature=0, logprobs=True, top_logprobs=2, extra_body={"chat_template": template})
    plain = client.completions.create(model="tiny-gpt2", prompt="user: Hello there\nassistant:",
                                      max_tokens=6, temperature=0,
                                      extra_body={"add_special_tokens": False})
    assert chat.choices[0].message.content == plain.choices[0].text
    assert len(chat.choices[0].logprobs.content) == 6
    assert len(chat.choices[0].logprobs.content[0].top_logprobs) == 2
    stream = list(client.chat.completions.create(
        model="tiny-gpt2", messages=[{"role": "user", "content": "Hello there"}], max_tokens=6,
        temperature=0, stream=True, extra_body={"chat_template": template}))
    assert "".join(c.choices[0].delta.content or "" for c in stream) == plain.choices[0].text


def test_chat_streaming_sends_the_text_held_back_at_the_end(client):
    """Output ending in the first character of a stop string is held back while streaming
    (it could become the stop string) and must come in the final chunk."""
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    request = dict(model="tiny-gpt2", messages=[{"role": "user", "content": "Hello there"}],
                   max_tokens=6, temperature=0, extra_body={"chat_template": template})
    whole = client.chat.completions.create(**request).choices[0].message.content
    assert whole
    stop = [whole[-1] + "\u2603\u2603"]  # begins as the output ends; never completed
    expected = client.chat.completions.create(**request, stop=stop).choices[0].message.content
    assert expected == whole
    stream = list(client.chat.completions.create(**request, stop=stop, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in stream) == expected
    assert stream[-1].choices[0].finish_reason == "length"


def test_bad_response_format_is_400_with_a_message(gpt2_server):
    for json_schema in ("a schema", [{"type": "object"}], {"name": "x"}):
        body = {"model": "tiny-gpt2", "messages": [{"role": "user", "content": "Hi"}],
                "response_format": {"type": "json_schema", "json_schema": json_schema}}
        response = httpx.post(f"{gpt2_server.base_url}/chat/completions", json=body,
                              headers=_headers(gpt2_server), timeout=30)
        assert response.status_code == 400, response.text
        assert "response_format.json_schema must be an object" in \
            response.json()["error"]["message"]


def test_chat_without_template_is_a_clear_400(client):
    import openai

    with pytest.raises(openai.BadRequestError, match="no chat template"):
        client.chat.completions.create(model="tiny-gpt2", max_tokens=2,
                                       messages=[{"role": "user", "content": "Hi"}])


def test_tokenize_and_detokenize(gpt2_server, gpt2_local):
    tokenizer = gpt2_local.get_tokenizer()
    tokens = httpx.post(f"{gpt2_server.root}/tokenize", headers=_headers(gpt2_server), timeout=10,
                        json={"model": "tiny-gpt2", "prompt": PROMPT}).json()
    assert tokens["tokens"] == tokenizer.encode_prompt(PROMPT)
    assert tokens["count"] == len(tokens["tokens"])
    text = httpx.post(f"{gpt2_server.root}/detokenize", headers=_headers(gpt2_server), timeout=10,
                      json={"model": "tiny-gpt2", "tokens": tokens["tokens"]}).json()
    assert text["prompt"] == PROMPT


def test_structured_outputs(client):
    """Validated, and served by the keyword each key names (`Keyword.structured_output`);
    vLLM's `grammar`, which no keyword answers, is a 400 naming the keys that are."""
    import openai

    for body, message in (({"bogus": 1}, "exactly one of choice, regex, json"),
                          ({"grammar": "start: /a/"}, "exactly one of choice, regex, json"),
                          ({"choice": []}, "choice must be")):
        with pytest.raises(openai.BadRequestError, match=message):
            client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=4,
                                      extra_body={"structured_outputs": body})
    response = client.completions.create(
        model="tiny-gpt2", prompt=PROMPT, max_tokens=8, temperature=0,
        extra_body={"structured_outputs": {"choice": [" Paris", " Berlin"]}})
    assert response.choices[0].text in (" Paris", " Berlin")


def test_wrong_or_missing_key_is_refused(gpt2_server):
    import openai

    for key in ("sk-wrong", ""):
        with openai.OpenAI(api_key=key or "x", base_url=gpt2_server.base_url,
                           max_retries=0) as wrong:
            with pytest.raises(openai.AuthenticationError):
                wrong.completions.create(model="tiny-gpt2", prompt="Hi", max_tokens=1)
    bare = httpx.post(f"{gpt2_server.base_url}/completions", timeout=10,
                      json={"model": "tiny-gpt2", "prompt": "Hi"})
    assert bare.status_code == 401
    assert httpx.post(f"{gpt2_server.root}/tokenize", timeout=10,
                      json={"model": "tiny-gpt2", "prompt": "Hi"}).status_code == 401


def test_unknown_model_is_404(client):
    import openai

    with pytest.raises(openai.NotFoundError, match="tiny-gpt2"):
        client.completions.create(model="no-such-model", prompt="Hi", max_tokens=1)


@pytest.mark.parametrize("body, message", [
    ({"prompt": "Hi"}, "model is required"),
    ({"model": "tiny-gpt2", "prompt": 5}, "prompt must be"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "max_tokens": -1}, "max_tokens must be an int >= 0"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "temperature": "hot"}, "temperature must be a number"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "logprobs": 50}, "logprobs must be an int in [0, 20]"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "logit_bias": {"5": 1}}, "not supported"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "colour": "red"}, "accepted fields"),
    ({"model": "tiny-gpt2", "prompt": [1, 99999]}, "outside the vocabulary"),
    ({"model": "tiny-gpt2", "prompt": "Hi " * 200}, "context of 128 tokens"),
    ({"model": "tiny-gpt2", "prompt": ["Hi", "Hi " * 200], "stream": True},
     "context of 128 tokens"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "echo": True, "stream": True},
     "stream is not supported with echo"),
    ({"model": "tiny-gpt2", "prompt": "Hi", "stop": [""]}, "stop[0] is empty"),
    # the same words as the API's (lmql_nb.core.validation)
    ({"model": "tiny-gpt2", "prompt": "Hi", "top_p": 0}, "top_p must be a number in (0, 1]"),
])
def test_bad_input_is_400_with_a_message(gpt2_server, body, message):
    response = httpx.post(f"{gpt2_server.base_url}/completions", json=body, headers=_headers(gpt2_server),
                          timeout=30)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


def test_invalid_json_is_400(gpt2_server):
    response = httpx.post(f"{gpt2_server.base_url}/completions", content=b"{nope",
                          headers={**_headers(gpt2_server), "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_an_unpaired_surrogate_is_400_and_the_server_stays_usable(gpt2_server):
    body = b'{"model": "tiny-gpt2", "prompt": "a \\ud800 b", "max_tokens": 2}'
    response = httpx.post(f"{gpt2_server.base_url}/completions", content=body,
                          headers={**_headers(gpt2_server), "Content-Type": "application/json"},
                          timeout=10)
    assert response.status_code == 400
    assert "unpaired surrogate" in response.json()["error"]["message"]
    ok = httpx.post(f"{gpt2_server.base_url}/completions", headers=_headers(gpt2_server),
                    json={"model": "tiny-gpt2", "prompt": "a b", "max_tokens": 2}, timeout=30)
    assert ok.status_code == 200


def test_concurrent_requests_give_the_sequential_results(client):
    prompts = [f"Number {i}:" for i in range(8)]
    sequential = [client.completions.create(model="tiny-gpt2", prompt=p, max_tokens=8,
                                            temperature=0).choices[0].text for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        concurrent_ = list(pool.map(lambda p: client.completions.create(
            model="tiny-gpt2", prompt=p, max_tokens=8, temperature=0).choices[0].text, prompts))
    assert concurrent_ == sequential


def test_disconnected_stream_frees_the_engine(gpt2_server, client):
    stream = client.completions.create(model="tiny-gpt2", prompt=PROMPT, max_tokens=None,
                                       temperature=1.0, n=16, stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        health = httpx.get(f"{gpt2_server.root}/health", timeout=5).json()
        if health["running"] == 0:
            break
        time.sleep(0.05)
    assert health["running"] == 0
    assert client.completions.create(model="tiny-gpt2", prompt="Hi", max_tokens=2,
                                     temperature=0).choices[0].text is not None


def test_refuses_to_bind_beyond_loopback_without_a_key(tiny_gpt2_path):
    result = subprocess.run([sys.executable, "-m", "lmql_nb", "serve",
                             f"local:{tiny_gpt2_path}", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items()
                                 if k != "LMQL_NB_API_KEY"})
    assert result.returncode == 2
    assert "refusing to bind to '0.0.0.0' without an API key" in result.stderr


def test_a_client_that_goes_away_stops_the_engine(long_gpt2_path, server_process):
    """A non-streaming request whose client disconnects is cancelled in the engine."""
    import openai

    server = server_process(f"local:{long_gpt2_path}", "long", api_key=None)
    try:
        def running() -> int:
            return httpx.get(f"{server.root}/health", timeout=5).json()["running"]

        def generate(timeout: float):
            with openai.OpenAI(api_key="none", base_url=server.base_url, max_retries=0,
                               timeout=timeout) as client:
                return client.completions.create(model="long", prompt="Once", max_tokens=None,
                                                 temperature=1.0, n=4, seed=0)

        started = time.monotonic()
        full = generate(120)
        whole = time.monotonic() - started
        assert whole > 1, f"generation took {whole:.1f} s: too quick to test cancelling"
        assert sum(len(c.text) for c in full.choices) > 0
        with pytest.raises(openai.APITimeoutError):
            generate(0.3)  # the client gives up after 0.3 s and closes the connection
        gone = time.monotonic()
        while running() and time.monotonic() - gone < whole:
            time.sleep(0.05)
        assert running() == 0
        print(f"full generation {whole:.1f} s; engine free {time.monotonic() - gone:.2f} s "
              "after the client left")
        assert time.monotonic() - gone < whole / 2
    finally:
        server.stop()
