"""Requests that must not stall the server for everyone (issue 14): a runaway chat
template, a huge body, deep nesting, a flood of requests, SIGTERM with work in flight.
Each bad request gets its 4xx, `/health` stays fast, well-formed requests lose nothing."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import statistics
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(240)

RUNAWAY = ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
           "{% endfor %}")


def _headers(server) -> dict:
    return {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}


def _health_times(server, seconds: float, stop: threading.Event,
                  at_least: int = 3) -> list[float]:
    """Latencies of /health polled for `seconds` (or until `stop`), and at least
    `at_least` of them: a bad request the server turns away quickly can set `stop`
    before the first poll, and an empty list would prove nothing."""
    times: list[float] = []
    end = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while len(times) < at_least or (time.monotonic() < end and not stop.is_set()):
            start = time.monotonic()
            assert client.get(f"{server.root}/health").status_code == 200
            times.append(time.monotonic() - start)
            time.sleep(0.05)
    return times


def test_a_runaway_template_is_stopped_and_health_stays_fast(gpt2_server):
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        health = pool.submit(_health_times, gpt2_server, 10, stop)
        start = time.monotonic()
        response = httpx.post(f"{gpt2_server.base_url}/chat/completions", timeout=60,
                              headers=_headers(gpt2_server), json={
                                  "model": "tiny-gpt2", "max_tokens": 2,
                                  "messages": [{"role": "user", "content": "Hi"}],
                                  "chat_template": RUNAWAY})
        elapsed = time.monotonic() - start
        stop.set()
        times = health.result()
    assert response.status_code == 400, response.text
    assert "budget" in response.json()["error"]["message"]
    assert elapsed < 10
    assert times and max(times) < 0.5, times
    for template, words in (("{{ 'x' * 1000000000 }}", "more than 100000 items"),
                            ("{{ 'x'|center(1000000000) }}", "numbers above 100000"),
                            ("{{ messages.append(1) }}", "unsafe")):
        response = httpx.post(f"{gpt2_server.base_url}/chat/completions", timeout=60,
                              headers=_headers(gpt2_server), json={
                                  "model": "tiny-gpt2", "max_tokens": 2,
                                  "messages": [{"role": "user", "content": "Hi"}],
                                  "chat_template": template})
        assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_a_huge_body_is_413_and_health_stays_fast(gpt2_server):
    body = json.dumps({"model": "tiny-gpt2", "prompt": "x" * (9 * 2**20)})
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        health = pool.submit(_health_times, gpt2_server, 5, stop)
        response = httpx.post(f"{gpt2_server.base_url}/completions", content=body, timeout=60,
                              headers={**_headers(gpt2_server),
                                       "Content-Type": "application/json"})
        stop.set()
        times = health.result()
    assert response.status_code == 413
    assert "--max-body-bytes" in response.json()["error"]["message"]
    assert times and max(times) < 0.5, times
    # under the limit but far longer than the context: a 400 without tokenising it
    start = time.monotonic()
    response = httpx.post(f"{gpt2_server.base_url}/completions", timeout=60,
                          headers=_headers(gpt2_server),
                          json={"model": "tiny-gpt2", "prompt": "x" * (6 * 2**20)})
    assert response.status_code == 400 and "context" in response.json()["error"]["message"]
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    json.dumps({"model": "tiny-gpt2", "prompt": "Hi", "structured_outputs": {
        "json": json.loads('{"items": ' * 100 + '{}' + '}' * 100)}}),
    json.dumps({"model": "tiny-gpt2", "prompt": "Hi", "structured_outputs": {
        "json": '{"items": ' * 5000 + '{}' + '}' * 5000}}),
])
def test_deep_nesting_is_400(gpt2_server, body):
    response = httpx.post(f"{gpt2_server.base_url}/completions", content=body, timeout=60,
                          headers={**_headers(gpt2_server), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "levels deep" in response.json()["error"]["message"] or \
        "structured_outputs.json" in response.json()["error"]["message"]


def test_a_flood_of_requests_loses_nothing(gpt2_server):
    """50 requests at once, each with its own prompt: every one answered, each equal to
    the same request sent alone."""
    prompts = [f"Numbers: {i} {i + 1}" for i in range(50)]

    def ask(prompt: str) -> dict:
        response = httpx.post(f"{gpt2_server.base_url}/completions", timeout=120,
                              headers=_headers(gpt2_server), json={
                                  "model": "tiny-gpt2", "prompt": prompt, "max_tokens": 4,
                                  "temperature": 0, "logprobs": 1})
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        together = list(pool.map(ask, prompts))
    alone = [ask(p) for p in prompts[:10]]
    for a, b in zip(together, alone):
        assert a["text"] == b["text"]
        assert a["logprobs"]["token_logprobs"] == pytest.approx(
            b["logprobs"]["token_logprobs"], abs=1e-4)


def test_health_fast_with_eight_long_generations_and_sigterm(long_gpt2_path, server_process):
    server = server_process(f"local:{long_gpt2_path}", "long-gpt2", api_key=None)
    try:
        # started without --trust-request-chat-template: a request's template is refused
        response = httpx.post(f"{server.base_url}/chat/completions", timeout=30, json={
            "model": "long-gpt2", "messages": [{"role": "user", "content": "Hi"}],
            "chat_template": "{{ messages[0]['content'] }}"})
        assert response.status_code == 400
        assert "--trust-request-chat-template" in response.json()["error"]["message"]
        stop = threading.Event()

        def generate(i: int) -> int:
            with httpx.stream("POST", f"{server.base_url}/completions", timeout=120, json={
                    "model": "long-gpt2", "prompt": f"Once upon a time {i}",
                    "max_tokens": 1500, "temperature": 0, "stream": True}) as response:
                return sum(1 for line in response.iter_lines() if line.startswith("data"))

        with concurrent.futures.ThreadPoolExecutor(9) as pool:
            streams = [pool.submit(generate, i) for i in range(8)]
            deadline = time.monotonic() + 30  # until all eight are in the engine
            while httpx.get(f"{server.root}/health", timeout=10).json()["running"] < 8:
                assert time.monotonic() < deadline, "the eight generations did not start"
                time.sleep(0.1)
            times = _health_times(server, 6, stop)
            # SIGTERM with the eight still running: the process ends within seconds and
            # each client gets an error event, not a hang
            start = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=15)
            stopped = time.monotonic() - start
            for stream in streams:
                try:
                    stream.result(timeout=15)
                except httpx.HTTPError:
                    pass  # the connection closed: an error too, not a hang
        print(f"/health while 8 generate: median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms; SIGTERM to exit {stopped:.2f} s")
        assert statistics.median(times) < 0.1, times
        assert max(times) < 0.25, times
        assert stopped < 8
    finally:
        server.stop()
