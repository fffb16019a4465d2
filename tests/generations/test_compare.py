"""`compare`: a continuation under several models, checked against each model's own
`score` and against transformers' forward pass; alignment across two tokenizers."""

from __future__ import annotations

import math

import pytest
import torch

import lmql_nb
from lmql_nb.tokenization.alignment import align

import reference

PROMPT = "The capital of France is"
CONTINUATION = " Paris. Ünïcödé café, 42 and 😀!"


@pytest.fixture(scope="module")
def comparison(tiny_gpt2_path, tiny_llama_path):
    models = [f"local:{tiny_gpt2_path}", f"local:{tiny_llama_path}"]
    return lmql_nb.compare_sync(PROMPT, CONTINUATION, models, top_logprobs=3, cache=False)


def test_numbers_equal_each_models_own_score_and_forward_pass(comparison, tiny_gpt2_path,
                                                              tiny_llama_path):
    for m, path in enumerate([tiny_gpt2_path, tiny_llama_path]):
        tokens = comparison.tokens[m]
        scored = lmql_nb.model(f"local:{path}").score_sync(PROMPT, CONTINUATION, cache=False)
        assert [t.token_id for t in tokens] == scored.token_ids[0]
        assert [t.logprob for t in tokens] == pytest.approx(scored.token_scores[0].tolist(),
                                                            abs=1e-4)
        total = reference.continuation_logprob(path, PROMPT, CONTINUATION)
        assert comparison.totals()[comparison.labels[m]] == pytest.approx(total, abs=1e-3)
        # ranks and alternatives from one forward pass over prompt + continuation
        _, tokenizer = reference.load(path)
        ids = reference.prompt_ids(tokenizer, PROMPT + CONTINUATION)
        logprobs = reference.token_logprobs(path, ids)
        first = len(ids) - len(tokens)
        for i, token in enumerate(tokens):
            row = logprobs[first + i - 1]
            assert token.rank == int((row > row[token.token_id]).sum()) + 1
            assert [a.token_id for a in token.top] == torch.topk(row, 3).indices.tolist()


def test_alignment_covers_every_character_once(comparison):
    assert not comparison.same_tokens
    assert "aligned on character spans" in repr(comparison)
    segments = comparison.segments
    assert segments[-1].end == len(comparison.text)
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    assert all(s.start < s.end for s in segments)
    assert segments[0].start <= len(PROMPT)
    for m, tokens in enumerate(comparison.tokens):
        seen = [i for s in segments for i in s.tokens[m]]
        assert seen == list(range(len(tokens)))  # each token once, in order
        for s in segments[1:]:  # a segment's text is its tokens' texts, in every model
            assert "".join(tokens[i].text for i in s.tokens[m]) == comparison.text[s.start:s.end]
        head = "".join(tokens[i].text for i in segments[0].tokens[m])
        assert comparison.text[segments[0].start:segments[0].end].endswith(head)
    assert any(len(s.tokens[0]) != len(s.tokens[1]) for s in segments)


def test_to_pandas_has_a_row_per_token_of_the_first_model(comparison):
    frame = comparison.to_pandas()
    gpt2, llama = comparison.labels
    assert len(frame) == len(comparison.tokens[0])
    assert list(frame["token"]) == [t.text for t in comparison.tokens[0]]
    for label, total in comparison.totals().items():
        assert frame[label].sum() == pytest.approx(total)  # NaNs skipped: each token once
    assert list(frame[gpt2]) == [t.logprob for t in comparison.tokens[0]]
    difference = frame[f"difference {llama}"].dropna()
    assert difference.sum() == pytest.approx(comparison.totals()[llama] - comparison.totals()[gpt2])


def test_one_model_twice_agrees_with_itself(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(ValueError, match="labels="):
        lmql_nb.compare_sync(PROMPT, " Paris", [llm, llm])
    same = lmql_nb.compare_sync(PROMPT, " Paris. The", [llm, llm], labels=["a", "b"])
    assert same.same_tokens and "differ" not in repr(same)
    assert same.differences() == [0.0] * len(same.segments)
    frame = same.to_pandas()
    assert list(frame.columns[:7]) == ["token", "start", "end", "a", "rank a", "b", "rank b"]
    assert (frame["a"] == frame["b"]).all() and (frame["rank a"] == frame["rank b"]).all()


def test_align_by_hand():
    # text "xabcd" ends at 5; model 0: "ab","c","d" (starts at 1), model 1: "xa","bcd"
    segments = align([["ab", "c", "d"], ["xa", "bcd"]], 5)
    assert [(s.start, s.end) for s in segments] == [(0, 5)]
    segments = align([["a", "", "bc", "d"], ["ab", "c", "d"]], 4)
    assert [(s.start, s.end, s.tokens) for s in segments] == [
        (0, 3, ((0, 1, 2), (0, 1))), (3, 4, ((3,), (2,)))]


def test_bad_input_is_named(tiny_gpt2_path):
    with pytest.raises(TypeError, match="models must be"):
        lmql_nb.compare_sync(PROMPT, " Paris", "local:x")
    with pytest.raises(ValueError, match="continuation must not be empty"):
        lmql_nb.compare_sync(PROMPT, "", [f"local:{tiny_gpt2_path}"])
    with pytest.raises(ValueError, match="labels must be"):
        lmql_nb.compare_sync(PROMPT, " Paris", [f"local:{tiny_gpt2_path}"], labels=["a", "b"])
    assert math.isfinite(lmql_nb.compare_sync(PROMPT, " Paris", [f"local:{tiny_gpt2_path}"])
                         .totals()[f"local:{tiny_gpt2_path}"])


def test_compare_scores_equals_each_models_own_score(tiny_gpt2_path, tiny_llama_path):
    models = [f"local:{tiny_gpt2_path}", f"local:{tiny_llama_path}"]
    values = [" Paris", " Berlin", " a quiet river"]
    compared = lmql_nb.compare_scores_sync(PROMPT, values, models, labels=["gpt2", "llama"],
                                           cache=False)
    winners = {}
    for label, path in zip(["gpt2", "llama"], [tiny_gpt2_path, tiny_llama_path]):
        totals = [reference.continuation_logprob(path, PROMPT, v) for v in values]
        winners[label] = values[totals.index(max(totals))]
        assert compared.results[compared.labels.index(label)].scores().tolist() == \
            pytest.approx(totals, abs=1e-3)
    assert compared.winners() == winners
    assert compared.agree() == (len(set(winners.values())) == 1)
    frame = compared.to_pandas()
    assert list(frame.columns) == ["value", "gpt2", "prob gpt2", "llama", "prob llama"]
    assert ("disagree" in repr(compared)) != compared.agree()
