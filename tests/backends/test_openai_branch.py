"""`LLM.branch` on a served model (`lmql_nb serve`): the branch runs on the server from
token ids and must equal the same branch in process."""

from __future__ import annotations

import dataclasses

import pytest

import lmql_nb

pytestmark = pytest.mark.timeout(120)

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def remote(gpt2_server):
    return lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url,
                         api_key=gpt2_server.api_key, timeout=30)


def test_a_branch_on_the_server_equals_the_branch_in_process(remote, gpt2_local):
    original = gpt2_local.generate_sync(PROMPT, max_tokens=8, return_details=True, cache=False)
    alternative = original.tokens[2].top[1]
    here = gpt2_local.branch_sync(original, 2, alternative, max_tokens=6)
    there = remote.branch_sync(original, 2, alternative, max_tokens=6)
    assert [t.token_id for t in there.tokens] == [t.token_id for t in here.tokens]
    assert [t.text for t in there.tokens] == [t.text for t in here.tokens]
    assert there.text == here.text and there.prefix_ids == here.prefix_ids
    assert [t.logprob for t in there.tokens] == pytest.approx([t.logprob for t in here.tokens],
                                                              abs=1e-4)
    first, expected = there.tokens[0], here.tokens[0]
    assert first.rank == expected.rank == 2
    assert [a.token_id for a in first.top] == [a.token_id for a in expected.top]
    assert [a.text for a in first.top] == [a.text for a in expected.top]
    # a branch of the remote branch: all shared ids go to the server
    again = remote.branch_sync(there, 1, there.tokens[1].top[2], max_tokens=4)
    local_again = gpt2_local.branch_sync(here, 1, here.tokens[1].top[2], max_tokens=4)
    assert [t.token_id for t in again.tokens] == [t.token_id for t in local_again.tokens]
    assert again.prefix_ids == local_again.prefix_ids


def test_what_a_server_cannot_branch_is_named(remote, gpt2_local):
    original = gpt2_local.generate_sync(PROMPT, max_tokens=4, return_details=True, cache=False)
    with pytest.raises(ValueError, match="constraint .* cannot continue after a prefix"):
        remote.branch_sync(original, 1, original.tokens[1].top[1], regex="[a-z ]+")
    # a generation lmql_nb serve made carries its token ids (token_details), so it
    # branches as the same generation made in process does
    from_server = remote.generate_sync(PROMPT, max_tokens=4, return_details=True, cache=False)
    there = remote.branch_sync(from_server, 1, 5, max_tokens=3)
    here = gpt2_local.branch_sync(original, 1, 5, max_tokens=3)
    assert [t.token_id for t in there.tokens] == [t.token_id for t in here.tokens]
    # a server that names no ids (OpenAI's own API): said so
    unnamed = dataclasses.replace(from_server, tokens=tuple(
        dataclasses.replace(t, token_id=-1) for t in from_server.tokens))
    with pytest.raises(ValueError, match="token ids are unknown"):
        remote.branch_sync(unnamed, 1, 5)


def test_compare_reads_a_served_model_like_the_same_model_in_process(remote, gpt2_local):
    compared = lmql_nb.compare_sync(PROMPT, " there was a small town", [gpt2_local, remote],
                                    labels=["here", "there"], top_logprobs=3)
    here, there = compared.tokens
    assert compared.same_tokens
    assert [t.token_id for t in there] == [t.token_id for t in here]
    assert [t.logprob for t in there] == pytest.approx([t.logprob for t in here], abs=1e-4)
    # a server reports the top k only: a rank beyond it is unknown (None) there
    assert [t.rank for t in there] == [t.rank if t.rank <= 3 else None for t in here]
    assert [[a.token_id for a in t.top] for t in there] == [[a.token_id for a in t.top]
                                                            for t in here]
