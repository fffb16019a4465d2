"""Issue 25: clients that disconnect mid-stream leave the server's log quiet (no
"Future exception was never retrieved ... CancelledError")."""

from __future__ import annotations

import time

import httpx


def test_disconnecting_mid_stream_logs_nothing_alarming(long_gpt2_path, server_process):
    import openai

    server = server_process(f"local:{long_gpt2_path}", "long", api_key=None)
    try:
        with openai.OpenAI(api_key="none", base_url=server.base_url, max_retries=0) as client:
            def start(prompt: str):
                return client.completions.create(model="long", prompt=prompt,
                                                 max_tokens=None, temperature=1.0, n=8,
                                                 stream=True)

            for round in range(3):
                running = start(f"Once {round}")
                next(iter(running))  # generating
                waiting = [start(f"Later {round} {i}") for i in range(3)]  # queued behind it
                for stream in waiting + [running]:
                    stream.close()  # gone mid-stream
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if httpx.get(f"{server.root}/health", timeout=5).json()["running"] == 0:
                    break
                time.sleep(0.05)
            # the server is well and answers the next request
            answer = client.completions.create(model="long", prompt="Hi", max_tokens=2,
                                               temperature=0)
            assert answer.choices[0].text is not None
        time.sleep(1.0)  # what the loop logs about abandoned futures, it logs by now
    finally:
        server.stop()
    log = "".join(server.stderr_lines)
    assert "never retrieved" not in log, log[-3000:]
    assert "CancelledError" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "socket.send() raised exception" not in log, log[-3000:]
