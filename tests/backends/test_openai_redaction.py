"""Secrets never show, and error messages stay readable whatever the key's length.

A real HTTP server on 127.0.0.1 answers every request with a 400 whose message echoes the
request's Authorization header (as some proxies do) beside ordinary words that contain
the key's letters. Redaction used to replace every occurrence of the key's text, so with
`api_key="x"` every "x" of a message became "<hidden>".
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest

import lmql_nb
from lmql_nb.backends.openai.transport import redact
from lmql_nb.errors import BackendError

pytestmark = pytest.mark.timeout(60)

MESSAGE = "max_tokens exceeds the context; example: max_tokens=16"


class _Echoing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # /v1/models: one model, so the probe passes
        self._answer(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        header = self.headers.get("Authorization", "")
        self._answer(400, {"error": {"message": f"{MESSAGE} (you sent Authorization: "
                                                f"{header})", "type": "invalid_request"}})

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echoing_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echoing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("key", ["x", "ma", "sk-" + "7f3a9c" * 6 + "b"],
                         ids=["1 char", "2 chars", "40 chars"])
def test_the_key_is_hidden_and_the_message_intact(echoing_server, key):
    assert len(key) in (1, 2, 40)
    llm = lmql_nb.model("openai/m", base_url=echoing_server, api_key=key, max_retries=0,
                        timeout=10)
    with pytest.raises(BackendError) as caught:
        llm.generate_sync("example", max_tokens=16, cache=False)
    text = str(caught.value)
    assert MESSAGE in text  # every "x" and "ma" of the server's words still there
    assert "Authorization: Bearer <hidden>" in text
    assert f"Bearer {key}" not in text
    if len(key) >= 8:
        assert key not in text


def test_a_long_key_is_hidden_wherever_it_stands_alone():
    key = "sk-" + "a1b2c3d4" * 4 + "e5f6g"
    text = f'{{"api_key": "{key}", "url": "http://h/?key={key}&x=1"}} {key}'
    assert redact(text, (key,)) == ('{"api_key": "<hidden>", "url": '
                                    '"http://h/?key=<hidden>&x=1"} <hidden>')


def test_a_short_key_is_hidden_only_where_secrets_are_written():
    text = "x is wrong; Bearer x; api_key=x; api-key: 'x'; http://user:x@host/; xx x-ray"
    assert redact(text, ("x",)) == ("x is wrong; Bearer <hidden>; api_key=<hidden>; "
                                    "api-key: '<hidden>'; http://user:<hidden>@host/; xx x-ray")
    assert redact("no secret here", ("", None)) == "no secret here"
