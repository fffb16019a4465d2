"""Saturating vLLM without losing a row: through a real fault-injecting proxy that
answers some requests 429 or 503 with Retry-After, score_many batches rows, keeps to its
bound on requests in flight, and returns every row once, in order, equal to in process."""

from __future__ import annotations

import json

import pytest

import lmql_nb
from servers import FaultProxy

pytestmark = pytest.mark.timeout(600)

VALUES = [" blue", " green", " red"]


@pytest.fixture
def vllm_proxy(vllm_server):
    proxy = FaultProxy(vllm_server.port)
    yield proxy
    proxy.close()


def test_score_many_through_429_and_503_loses_and_repeats_no_row(vllm_proxy, local):
    remote = lmql_nb.model("openai/gemma", base_url=vllm_proxy.base_url, timeout=120,
                           max_concurrency=2, batch_rows=4, max_retries=6)
    remote.score_sync("warm", VALUES, cache=False)  # the probe is not a row
    vllm_proxy.forwarded.clear()
    vllm_proxy.max_by_path.clear()
    vllm_proxy.retry_after = "0.2"
    vllm_proxy.faults = ["429", "forward", "503", "forward", "forward"] * 4
    prompts = [f"Line {i}: the sky is" for i in range(32)]
    table = remote.score_many_sync(prompts, VALUES, cache=False, progress=False)
    assert table.complete and [r.prompt for r in table] == prompts
    for index in (0, 13, 31):
        expected = local.score_sync(prompts[index], VALUES, cache=False)
        assert table[index].scores() == pytest.approx(expected.scores(), abs=1e-4)
    faults = [f for _, f in vllm_proxy.requests]
    assert faults.count("429") >= 2 and faults.count("503") >= 2
    batches = [json.loads(body)["prompt"] for line, body in vllm_proxy.forwarded
               if "/v1/completions" in line]
    sent = sorted(p for batch in batches for p in batch)
    # each row's prompt + value, once (vLLM tokenises them and returns the ids)
    assert sent == sorted(p + v for p in prompts for v in VALUES)
    assert max(len(batch) for batch in batches) > len(VALUES)  # rows share requests
    assert max(len(batch) for batch in batches) <= 4 * len(VALUES)
    assert vllm_proxy.max_by_path["/v1/completions"] <= 2  # scoring requests: bounded
