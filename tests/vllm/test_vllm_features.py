"""lmql_nb against a real vLLM server equals lmql_nb in process on the same folder: greedy
text and per-token numbers, scores, score_many, constraints, stops, streaming,
sampling with n, query programs, branch and compare."""

from __future__ import annotations

import json
import re

import pytest

import lmql_nb

pytestmark = pytest.mark.timeout(600)

PROMPTS = ["The capital of France is", "Once upon a time", "Q: What is 2+3?\nA:"]
VALUES = [" Paris", " Berlin", "Paris", " London and more"]


def test_greedy_text_and_token_numbers_equal_in_process(remote, local):
    for prompt in PROMPTS:
        expected = local.generate_sync(prompt, max_tokens=12, return_details=True,
                                       cache=False)
        got = remote.generate_sync(prompt, max_tokens=12, return_details=True, cache=False)
        assert got.text == expected.text
        assert got.finish_reason == expected.finish_reason
        assert [t.logprob for t in got.tokens] == pytest.approx(
            [t.logprob for t in expected.tokens], abs=1e-4)
        assert [t.rank for t in got.tokens] == [t.rank for t in expected.tokens]
        for g, e in zip(got.tokens, expected.tokens):  # the alternatives' numbers
            assert [a.logprob for a in g.top] == pytest.approx(
                [a.logprob for a in e.top][:len(g.top)], abs=1e-4)


@pytest.mark.parametrize("penalties", [dict(repetition_penalty=1.3),
                                       dict(frequency_penalty=0.8, presence_penalty=0.5)])
def test_penalties_equal_in_process(remote, local, penalties):
    """vLLM takes OpenAI's frequency/presence_penalty and its own repetition_penalty (the
    prompt counted, as transformers counts it) with the same formulas as in process."""
    expected = local.generate_sync(PROMPTS[1], max_tokens=16, return_details=True,
                                   cache=False, **penalties)
    got = remote.generate_sync(PROMPTS[1], max_tokens=16, return_details=True, cache=False,
                               **penalties)
    assert got.text == expected.text
    assert [t.logprob for t in got.tokens] == pytest.approx(
        [t.logprob for t in expected.tokens], abs=1e-4)  # the model's own, unpenalised
    assert expected.text != local.generate_sync(PROMPTS[1], max_tokens=16, cache=False)


def test_scores_equal_in_process(remote, local):
    for prompt in PROMPTS[:2]:
        expected = local.score_sync(prompt, VALUES, cache=False)
        got = remote.score_sync(prompt, VALUES, cache=False)
        assert got.token_ids == expected.token_ids
        for g, e in zip(got.token_scores, expected.token_scores):
            assert g == pytest.approx(e, abs=1e-4)


def test_score_many_equals_in_process_row_by_row(remote, local):
    prompts = [f"Item {i}: the colour of the sky is" for i in range(24)]
    values = [" blue", " green", " red"]
    got = remote.score_many_sync(prompts, values, progress=False, cache=False)
    assert got.complete and len(got) == len(prompts)
    for index in (0, 7, 23):  # rows in order: each equals its own in-process score
        expected = local.score_sync(prompts[index], values, cache=False)
        assert got[index].prompt == prompts[index]
        assert got[index].scores() == pytest.approx(expected.scores(), abs=1e-4)


@pytest.mark.parametrize("constraint", [
    {"choices": [" Paris", " Berlin", " Rome"]},
    {"regex": r" [0-9]{2}"},
    {"type": int},
    {"json_schema": {"type": "object", "properties": {"a": {"type": "integer"}},
                     "required": ["a"]}},
    {"stops_before": ["."]},
    {"stops_at": [","]},
], ids=["choices", "regex", "int", "json", "stops_before", "stops_at"])
def test_constraints_hold_and_equal_in_process(remote, local, constraint):
    prompt = 'Reply in JSON. Example: {"a": 3}\nReply:' if "json_schema" in constraint \
        else PROMPTS[0]
    expected = local.generate_sync(prompt, max_tokens=16, cache=False, **constraint)
    got = remote.generate_sync(prompt, max_tokens=16, cache=False, **constraint)
    if "choices" in constraint:
        assert got in constraint["choices"]
    elif "regex" in constraint:
        assert re.fullmatch(constraint["regex"], got)
    elif "type" in constraint:
        assert re.fullmatch(r" ?-?[0-9]+", got)
    elif "json_schema" in constraint:
        assert isinstance(json.loads(got)["a"], int)
    elif "stops_before" in constraint:
        assert "." not in got
    assert got == expected


def test_streaming_delivers_the_result_token_by_token(remote, local):
    seen: list[tuple[int, str, float]] = []
    result = remote.generate_sync(PROMPTS[1], max_tokens=10, return_details=True,
                                  cache=False,
                                  on_token=lambda i, t: seen.append((i, t.text, t.logprob)))
    assert seen == [(0, t.text, t.logprob) for t in result.tokens]
    assert result.text == local.generate_sync(PROMPTS[1], max_tokens=10, cache=False)


def test_sampling_with_n_is_reproducible_with_a_seed(remote):
    first = remote.generate_sync(PROMPTS[1], max_tokens=8, decoder="sample", n=3, seed=5,
                                 cache=False)
    assert len(first) == 3 and len(set(first)) > 1
    assert remote.generate_sync(PROMPTS[1], max_tokens=8, decoder="sample", n=3, seed=5,
                                cache=False) == first


def test_beam_search_without_a_constraint_equals_in_process(remote, local):
    expected = local.generate_sync(PROMPTS[0], max_tokens=6, decoder="beam", n=2,
                                   cache=False)
    got = remote.generate_sync(PROMPTS[0], max_tokens=6, decoder="beam", n=2, cache=False)
    assert got[0] == expected[0]


def test_a_query_program_equals_in_process(remote, local):
    source = '''
argmax
    "Review: The food was wonderful and the staff were kind.\\n"
    "Q: Is the review positive or negative?\\n"
    "A: The review is[CLS]"
distribution
    CLS in [" positive", " negative"]
'''
    got = lmql_nb.run_sync(source, model=remote)
    expected = lmql_nb.run_sync(source, model=local)
    assert got.variables["CLS"] == expected.variables["CLS"]
    for (gv, gp), (ev, ep) in zip(got.variables["P(CLS)"], expected.variables["P(CLS)"]):
        assert gv == ev and gp == pytest.approx(ep, abs=1e-4)


def test_branch_equals_in_process(remote, local):
    g = local.generate_sync(PROMPTS[0], max_tokens=8, return_details=True, cache=False)
    served = remote.generate_sync(PROMPTS[0], max_tokens=8, return_details=True, cache=False)
    # vLLM returns the generated tokens' ids, so its generations can be branched
    assert [t.token_id for t in served.tokens] == [t.token_id for t in g.tokens]
    alternative = g.tokens[2].top[1]
    expected = local.branch_sync(g, 2, alternative.token_id, max_tokens=6)
    got = remote.branch_sync(served, 2, alternative.token_id, max_tokens=6)
    assert got.text == expected.text
    assert [t.logprob for t in got.tokens] == pytest.approx(
        [t.logprob for t in expected.tokens], abs=1e-4)


def test_compare_finds_no_difference_between_vllm_and_in_process(remote, local):
    continuation = local.generate_sync(PROMPTS[0], max_tokens=8, cache=False)
    c = lmql_nb.compare_sync(PROMPTS[0], continuation, [local, remote],
                             labels=["in process", "vllm"])
    assert c.same_tokens
    frame = c.to_pandas()
    assert frame["difference vllm"].abs().max() < 1e-4
