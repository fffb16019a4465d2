"""`score_many` over HTTP: the in-process numbers, with bounded concurrency."""

from __future__ import annotations

import numpy as np
import pytest

import lmql_nb

pytestmark = pytest.mark.timeout(120)


def test_score_many_over_http_keeps_to_max_concurrency(fault_proxy, gpt2_server, gpt2_local):
    remote = lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                           api_key=gpt2_server.api_key, timeout=30, max_concurrency=3)
    prompts = [f"Row {i}: the capital of" for i in range(20)]
    values = [" France", " the river"]
    assert remote.backend.score_window == 3 * 8  # max_concurrency x batch_rows
    remote.score_sync("warm", values, cache=False)  # the probe at load is not a row
    fault_proxy.max_by_path.clear()
    table = remote.score_many_sync(prompts, values, cache=False, progress=False)
    assert table.complete
    for prompt, result in zip(prompts, table):
        expected = gpt2_local.score_sync(prompt, values, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    assert 1 < fault_proxy.max_by_path["/v1/completions"] <= 3  # concurrent, bounded
