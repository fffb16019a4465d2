"""Model ids for remote models, options, Azure's request shape, and lazy imports."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest

import lmql_nb
from lmql_nb.backends.openai import OpenAIBackend
from lmql_nb.backends.endpoints import endpoint_url
from lmql_nb.backends.registry import accepted_forms, create_backend


def test_openai_ids_and_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:9000/v1")
    backend = create_backend("openai/my-model")
    assert isinstance(backend, OpenAIBackend)
    assert backend.model == "my-model" and backend.url == "http://10.0.0.5:9000/v1"
    assert backend.chat is False  # a server of one's own: completions
    assert "sk-from-env" not in repr(backend)
    monkeypatch.delenv("OPENAI_BASE_URL")
    official = create_backend("openai/gpt-4o-mini")
    assert official.official and official.chat
    assert create_backend("openai/gpt-3.5-turbo-instruct").chat is False
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match=r"needs an API key.*OPENAI_API_KEY"):
        create_backend("openai/gpt-4o-mini")


def test_endpoint_shorthand(monkeypatch):
    monkeypatch.setenv("LMQL_NB_API_KEY", "sk-local-abcdef")
    backend = create_backend("gemma", endpoint="127.0.0.1:8080")
    assert backend.model == "gemma" and backend.url == "http://127.0.0.1:8080/v1"
    assert backend._api_key.reveal() == "sk-local-abcdef"
    assert endpoint_url("https://host.example/v1/") == "https://host.example/v1"
    assert endpoint_url("http://host:1") == "http://host:1/v1"
    with pytest.raises(ValueError, match="host:port"):
        endpoint_url("")
    with pytest.raises(ValueError, match="either endpoint= or base_url="):
        create_backend("gemma", endpoint="127.0.0.1:8080", base_url="http://x/v1")


def test_accepted_forms_name_the_remote_forms():
    assert "openai/<model>" in accepted_forms() and "endpoint=" in accepted_forms()
    with pytest.raises(ValueError, match="openai/<model>"):
        create_backend("no-such-form")


@pytest.mark.parametrize("options, message", [
    ({"scoring": "guess"}, "scoring must be one of exact, first-token-approximation"),
    ({"timeout": 0}, "timeout must be a number of seconds"),
    ({"max_retries": -1}, "max_retries must be an int >= 0"),
    ({"max_concurrency": 0}, "max_concurrency must be an int >= 1"),
])
def test_bad_options_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        create_backend("openai/m", base_url="http://127.0.0.1:1/v1", **options)


def test_credentials_in_a_url_are_not_shown():
    backend = create_backend("openai/m", base_url="http://user:hunter2@127.0.0.1:1/v1")
    assert "hunter2" not in repr(backend) and "hunter2" not in backend.identity()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers any POST with a fixed chat completion and remembers what it was sent."""

    seen: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, dict(self.headers), json.loads(body)))
        answer = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": "dep",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Paris"},
                         "logprobs": {"content": [{"token": "Paris", "logprob": -0.5,
                                                   "bytes": None, "top_logprobs": []}]}}],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


def test_azure_requests_go_to_the_deployment_with_the_api_key_header():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        secret = "azure-secret-key-7777"
        llm = lmql_nb.model("openai/my-deployment", api_key=secret,
                            azure_endpoint=f"http://127.0.0.1:{server.server_port}",
                            api_version="2024-10-21")
        assert llm.backend.chat and llm.backend.azure
        result = llm.generate_sync("The capital of France is", max_tokens=3,
                                   return_details=True)
        assert result.text == "Paris" and result.tokens[0].logprob == -0.5
        path, headers, body = _Recorder.seen[-1]
        assert path == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
        assert headers.get("api-key") == secret
        assert body["messages"] == [{"role": "user", "content": "The capital of France is"}]
        assert body["max_completion_tokens"] == 3 and body["temperature"] == 0
        assert secret not in repr(llm.backend)
    finally:
        server.shutdown()


def test_azure_gets_openais_penalties_and_repetition_penalty_is_refused():
    """OpenAI's API (here Azure's shape, answered by a recording server) takes
    frequency_penalty and presence_penalty as they are; it has no repetition_penalty, so
    that is refused before any request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = lmql_nb.model("openai/my-deployment", api_key="azure-key-123456",
                            azure_endpoint=f"http://127.0.0.1:{server.server_port}",
                            api_version="2024-10-21")
        llm.generate_sync("Hi", max_tokens=3, frequency_penalty=0.5, presence_penalty=-0.25,
                          cache=False)
        body = _Recorder.seen[-1][2]
        assert (body["frequency_penalty"], body["presence_penalty"]) == (0.5, -0.25)
        assert "repetition_penalty" not in json.dumps(body)
        sent = len(_Recorder.seen)
        with pytest.raises(ValueError, match="repetition_penalty is not supported by OpenAI's "
                                             r"API; use frequency_penalty or presence_penalty"):
            llm.generate_sync("Hi", max_tokens=3, repetition_penalty=1.3, cache=False)
        assert len(_Recorder.seen) == sent
    finally:
        server.shutdown()


def test_importing_lmql_nb_stays_light():
    code = ("import sys, lmql_nb, lmql_nb.backends.registry, lmql_nb.server, lmql_nb.server.jupyter; "
            "heavy = [m for m in ('openai', 'starlette', 'uvicorn', 'torch', 'transformers', "
            "'httpx') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
