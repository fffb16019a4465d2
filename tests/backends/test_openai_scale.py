"""Saturating a server without losing a row: `score_many` and concurrent calls over HTTP
keep a bounded number of requests in flight, send several rows per request, retry 429
and 503 answers (honouring Retry-After), and return every row once, in order, equal to
the in-process numbers. A real server (`python -m lmql_nb serve`, the tiny GPT-2) behind
a real fault-injecting proxy."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

import lmql_nb

pytestmark = pytest.mark.timeout(180)

VALUES = [" France", " the river", " a"]


def _remote(fault_proxy, gpt2_server, **options):
    return lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                         api_key=gpt2_server.api_key, timeout=30, **options)


def _completion_prompts(fault_proxy) -> list[list]:
    """The prompt lists of the /v1/completions requests the proxy passed on."""
    return [json.loads(body)["prompt"] for line, body in fault_proxy.forwarded
            if line.startswith("POST") and "/v1/completions" in line]


def test_rows_are_batched_bounded_and_each_returned_once_in_order(fault_proxy, gpt2_server,
                                                                   gpt2_local):
    remote = _remote(fault_proxy, gpt2_server, max_concurrency=2, batch_rows=4)
    assert remote.backend.score_window == 8
    remote.score_sync("warm", VALUES, cache=False)  # the probe at load is not a row
    fault_proxy.forwarded.clear()
    fault_proxy.max_by_path.clear()
    prompts = [f"Row {i}: the capital of" for i in range(40)]
    table = remote.score_many_sync(prompts, VALUES, cache=False, progress=False)
    assert table.complete and [r.prompt for r in table] == prompts
    for prompt, result in zip(prompts, table):
        expected = gpt2_local.score_sync(prompt, VALUES, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    batches = _completion_prompts(fault_proxy)
    # every row's prompt + value, once (the server tokenises them and returns the ids;
    # one /tokenize per row for the prompt's own ids)
    assert sorted(p for batch in batches for p in batch) == sorted(
        p + v for p in prompts for v in VALUES)
    assert len([line for line, _ in fault_proxy.forwarded if "/tokenize" in line]) == \
        len(prompts)
    sent = [len(batch) for batch in batches]
    assert max(sent) > len(VALUES)  # several rows in one request
    assert max(sent) <= 4 * len(VALUES)  # never more than batch_rows rows
    assert len(batches) < len(prompts)
    assert fault_proxy.max_by_path["/v1/completions"] <= 2  # scoring requests: bounded


@pytest.mark.parametrize("fault", ["429", "503"])
def test_throttling_is_retried_and_no_row_is_lost_or_repeated(fault_proxy, gpt2_server,
                                                               gpt2_local, fault):
    remote = _remote(fault_proxy, gpt2_server, max_concurrency=3, batch_rows=3,
                     max_retries=6)
    remote.score_sync("warm", VALUES, cache=False)
    fault_proxy.forwarded.clear()
    fault_proxy.retry_after = "0.2"
    fault_proxy.faults = [fault, "forward", fault, fault, "forward"] * 6
    prompts = [f"Line {i} reads" for i in range(24)]
    table = remote.score_many_sync(prompts, VALUES, cache=False, progress=False)
    assert [r.prompt for r in table] == prompts
    for prompt, result in zip(prompts, table):
        expected = gpt2_local.score_sync(prompt, VALUES, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    assert sum(f == fault for _, f in fault_proxy.requests) >= 10  # throttled often
    sent = sorted(p for batch in _completion_prompts(fault_proxy) for p in batch)
    assert sent == sorted(p + v for p in prompts for v in VALUES)


def test_concurrent_scores_share_requests_and_keep_their_own_rows(fault_proxy, gpt2_server,
                                                                  gpt2_local):
    remote = _remote(fault_proxy, gpt2_server, max_concurrency=1, batch_rows=8)
    remote.score_sync("warm", VALUES, cache=False)
    fault_proxy.forwarded.clear()
    prompts = [f"Question {i}: where is" for i in range(12)]

    async def all_at_once() -> list:
        return await asyncio.gather(*(remote.score(p, VALUES, cache=False) for p in prompts))

    results = asyncio.run(all_at_once())
    for prompt, result in zip(prompts, results):
        assert result.prompt == prompt
        expected = gpt2_local.score_sync(prompt, VALUES, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    assert len(_completion_prompts(fault_proxy)) < len(prompts)


def test_progress_shows_rows_and_rows_per_second(fault_proxy, gpt2_server, capsys):
    remote = _remote(fault_proxy, gpt2_server)
    remote.score_many_sync([f"Row {i}" for i in range(6)], VALUES, cache=False,
                           progress=True)
    bar = capsys.readouterr().err
    assert "6/6" in bar and "rows/s" in bar
