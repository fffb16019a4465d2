"""Scoring against `lmql_nb serve` asks for the values' log-probabilities alone
(`logprobs_from`, the server's extension), and never sends it to another server.

The requests are read as they leave the client, at a proxy in front of the real server;
expected numbers come from the same tiny model in process.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import lmql_nb
import reference

pytestmark = pytest.mark.timeout(120)

PROMPTS = ["The capital of France is", "Once upon a time there was", "Numbers: 1 2"]
VALUES = [" Paris", " a city by the river", " 3"]
#: prompts cut inside a word, so the joint tokenisation may merge across the boundary
CUT = [("The capital of Fra", "nce"), ("Once upon a ti", "me"), ("Numbers: 1", "23"),
       ("Hello wor", "ld"), ("The riv", "er")]


def _remote(fault_proxy, gpt2_server):
    return lmql_nb.model("openai/tiny-gpt2", base_url=fault_proxy.base_url,
                         api_key=gpt2_server.api_key, timeout=30)


def _echo_bodies(fault_proxy) -> list[dict]:
    return [json.loads(body) for line, body in fault_proxy.forwarded
            if " /v1/completions " in line]


def test_scores_from_lmql_nb_serve_ask_for_the_values_alone(fault_proxy, gpt2_server,
                                                             gpt2_local, tiny_gpt2_path):
    _, tokenizer = reference.load(tiny_gpt2_path)
    merging = [(p, v) for p, v in CUT
               if tokenizer(p + v).input_ids[:len(tokenizer(p).input_ids)]
               != tokenizer(p).input_ids]
    assert merging, "no prompt here whose value merges with its last token"
    remote = _remote(fault_proxy, gpt2_server)
    prompts = PROMPTS + [p for p, _ in merging]
    values = VALUES + [v for _, v in merging]
    table = remote.score_many_sync(prompts, values, cache=False, progress=False)
    assert table.complete
    for prompt, result in zip(prompts, table):
        expected = gpt2_local.score_sync(prompt, values, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, rtol=0, atol=1e-4)
    bodies = _echo_bodies(fault_proxy)
    assert all(len(b["logprobs_from"]) == len(b["prompt"]) for b in bodies)
    sent = {(text, start) for b in bodies for text, start in zip(b["prompt"], b["logprobs_from"])}
    for prompt, value in zip(prompts, values):
        joint, own = tokenizer(prompt + value).input_ids, tokenizer(prompt).input_ids
        split = next(i for i, (a, b) in enumerate(zip(joint, own + [None])) if a != b)
        asked = {start for text, start in sent if text == prompt + value}
        # each prompt's own length, where its values begin; a merged boundary asked
        # again from where the joint tokenisation puts it
        assert asked == ({len(own)} if split == len(own) else {len(own), split})


def test_a_vllm_server_is_never_sent_logprobs_from(fault_proxy, gpt2_server, gpt2_local):
    remote = _remote(fault_proxy, gpt2_server)
    backend = remote.backend
    backend._server()  # the probe: the lmql_nb server says who it is
    assert backend._capabilities.owner == "lmql_nb"
    backend._capabilities = dataclasses.replace(backend._capabilities, owner="vllm")
    fault_proxy.forwarded.clear()
    table = remote.score_many_sync(PROMPTS, VALUES, cache=False, progress=False)
    for prompt, result in zip(PROMPTS, table):
        expected = gpt2_local.score_sync(prompt, VALUES, cache=False).scores()
        np.testing.assert_allclose(result.scores(), expected, rtol=0, atol=1e-4)
    bodies = _echo_bodies(fault_proxy)
    assert bodies and all(b.get("return_token_ids") is True for b in bodies)
    assert not any("logprobs_from" in b for b in bodies)
