"""Retries through a fault-injecting proxy: transient faults are retried (honouring
Retry-After), persistent ones end in a clear error, and nothing waits past its bounds."""

from __future__ import annotations

import time

import pytest

import lmql_nb
from lmql_nb.errors import OpenAIBackendError

pytestmark = pytest.mark.timeout(60)


def _model(proxy, server, **options):
    llm = lmql_nb.model("openai/tiny-gpt2", base_url=proxy.base_url, api_key=server.api_key,
                        **options)
    llm.generate_sync("warm up", max_tokens=1, cache=False)  # the probe, through "forward"
    proxy.requests.clear()
    return llm


@pytest.mark.parametrize("fault", ["429", "500", "reset"])
def test_a_transient_fault_is_retried(fault_proxy, gpt2_server, gpt2_local, fault):
    llm = _model(fault_proxy, gpt2_server, max_retries=2)
    fault_proxy.retry_after = "1"
    fault_proxy.faults = [fault]
    started = time.monotonic()
    text = llm.generate_sync("Once upon a time", max_tokens=6, cache=False)
    elapsed = time.monotonic() - started
    assert text == gpt2_local.generate_sync("Once upon a time", max_tokens=6, cache=False)
    assert [f for _, f in fault_proxy.requests] == [fault, "forward"]
    if fault == "429":  # Retry-After: 1 was honoured
        gap = fault_proxy.requests[1][0] - fault_proxy.requests[0][0]
        assert 0.95 <= gap < 3, gap
    assert elapsed < 10


def test_persistent_errors_end_in_a_clear_error(fault_proxy, gpt2_server):
    llm = _model(fault_proxy, gpt2_server, max_retries=2)
    fault_proxy.default = "500"
    started = time.monotonic()
    with pytest.raises(OpenAIBackendError, match=r"failed after 3 attempts: HTTP 500: injected fault"):
        llm.generate_sync("Hi", max_tokens=2, cache=False)
    assert len(fault_proxy.requests) == 3
    assert time.monotonic() - started < 15


def test_a_long_retry_after_fails_at_once(fault_proxy, gpt2_server):
    llm = _model(fault_proxy, gpt2_server, max_retries=3, retry_max_wait=30)
    fault_proxy.default = "429"
    fault_proxy.retry_after = "3600"
    started = time.monotonic()
    with pytest.raises(OpenAIBackendError, match="retry after 3600 s, more than retry_max_wait"):
        llm.generate_sync("Hi", max_tokens=2, cache=False)
    # no wait at all: well under the 30 s retry_max_wait a capped sleep would take, with
    # room for one slow request on a loaded machine
    assert time.monotonic() - started < 10
    assert len(fault_proxy.requests) == 1


def test_a_stalled_server_times_out_then_errors(fault_proxy, gpt2_server):
    llm = _model(fault_proxy, gpt2_server, max_retries=1, timeout=1)
    fault_proxy.default = "stall"
    started = time.monotonic()
    with pytest.raises(OpenAIBackendError, match=r"after 2 attempts: no answer within 1 s"):
        llm.generate_sync("Hi", max_tokens=2, cache=False)
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 8, elapsed
    assert len(fault_proxy.requests) == 2


def test_client_errors_are_not_retried(fault_proxy, gpt2_server):
    llm = lmql_nb.model("openai/no-such-model-here", base_url=fault_proxy.base_url,
                        api_key=gpt2_server.api_key, max_retries=3)
    with pytest.raises(OpenAIBackendError, match="does not serve a model named"):
        llm.generate_sync("Hi", max_tokens=2)
    fault_proxy.requests.clear()
    wrong_key = lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                              api_key="sk-wrong", max_retries=3)
    with pytest.raises(OpenAIBackendError, match="HTTP 401"):
        wrong_key.generate_sync("Hi", max_tokens=2)
    assert len(fault_proxy.requests) == 1  # the probe of /v1/models, not retried


def test_nothing_listening_is_a_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = lmql_nb.model("nobody", endpoint=f"127.0.0.1:{port}", max_retries=1)
    started = time.monotonic()
    with pytest.raises(OpenAIBackendError, match=f"127.0.0.1:{port}.*connection failed"):
        llm.generate_sync("Hi", max_tokens=2)
    assert time.monotonic() - started < 10


def test_concurrency_is_bounded(fault_proxy, gpt2_server):
    import asyncio

    llm = _model(fault_proxy, gpt2_server, max_retries=0, timeout=1, max_concurrency=2)
    fault_proxy.default = "stall"

    async def five_at_once() -> list:
        return await asyncio.gather(*(llm.generate(f"Hi {i}", max_tokens=2, cache=False)
                                      for i in range(5)), return_exceptions=True)

    started = time.monotonic()
    results = asyncio.run(five_at_once())
    assert all(isinstance(r, OpenAIBackendError) for r in results)
    assert fault_proxy.max_stalled == 2
    assert len(fault_proxy.requests) == 5
    assert 3 <= time.monotonic() - started < 10  # three rounds of a 1 s timeout
