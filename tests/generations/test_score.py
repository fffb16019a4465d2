"""Scoring on tiny models, checked against one forward pass of transformers."""

from __future__ import annotations

import numpy as np
import pytest

import lmql_nb
from lmql_nb import ScoringResult

import reference

VALUES = [" France", " Germany", " a", " the river and the town", "日本語 😀", " 42"]


@pytest.mark.parametrize("prompt", ["The capital of", "Once upon a time there", ""])
def test_scores_equal_an_independent_forward_pass(tiny_path, prompt):
    llm = lmql_nb.model(f"local:{tiny_path}")
    result = llm.score_sync(prompt, VALUES, cache=False)
    expected = [reference.continuation_logprob(tiny_path, prompt, v) for v in VALUES]
    np.testing.assert_allclose(result.scores("sum"), expected, atol=1e-4)


def test_token_scores_align_with_the_value_tokens(tiny_llama_path):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    result = llm.score_sync("The capital of", [" France", " the river"], cache=False)
    _, tokenizer = reference.load(tiny_llama_path)
    for value, ids, tokens, scores in zip(result.continuations, result.token_ids,
                                          result.tokens, result.token_scores):
        joint = reference.prompt_ids(tokenizer, "The capital of" + value)
        assert joint[-len(ids):] == ids
        assert len(tokens) == len(ids) == len(scores)
        assert "".join(tokens) == value


def test_a_boundary_token_belongs_to_the_value(tiny_llama_path):
    """'... of ' + 'France' and '... of' + ' France' are the same text: same score."""
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    spaced = llm.score_sync("The capital of ", ["France"], cache=False)
    joined = llm.score_sync("The capital of", [" France"], cache=False)
    assert spaced.token_ids == joined.token_ids
    np.testing.assert_allclose(spaced.scores(), joined.scores(), atol=1e-5)


def test_a_value_that_merges_with_the_whole_prompt(tiny_gpt2_path):
    # GPT-2 style tokenizers add no BOS: with a one-token prompt that merges with the value,
    # the value is scored from the start token, the other values after the prompt
    _, tokenizer = reference.load(tiny_gpt2_path)
    pairs = [(a, b) for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"
             if len(tokenizer(a + b).input_ids) == 1 and len(tokenizer(a).input_ids) == 1]
    assert pairs, "the tiny tokenizer should merge some pair of letters"
    prompt, merging = pairs[0]
    values = [merging, " zz"]
    result = lmql_nb.model(f"local:{tiny_gpt2_path}").score_sync(prompt, values, cache=False)
    expected = [reference.continuation_logprob(tiny_gpt2_path, prompt, v) for v in values]
    assert result.scores().tolist() == pytest.approx(expected, abs=1e-4)


def test_a_single_string_value(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    result = llm.score_sync("The capital of", " France", cache=False)
    assert result.continuations == [" France"]
    assert result.scores()[0] == pytest.approx(
        reference.continuation_logprob(tiny_gpt2_path, "The capital of", " France"), abs=1e-4)


def test_the_same_call_gives_the_same_numbers(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    first = llm.score_sync("Once upon", VALUES, cache=False)
    second = llm.score_sync("Once upon", VALUES, cache=False)
    assert first.scores().tolist() == second.scores().tolist()


def test_scoring_many_values_in_several_batches(tiny_gpt2_path, monkeypatch):
    """Values beyond one batch's logit budget go in further batches, same numbers."""
    from lmql_nb.backends.transformers import torch_model

    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    values = [f" {i} and {i + 1}" for i in range(12)]
    whole = llm.score_sync("Numbers:", values, cache=False).scores()
    monkeypatch.setattr(torch_model, "MAX_LOGITS_PER_BATCH", 1)  # one value per batch
    split = llm.score_sync("Numbers:", values, cache=False).scores()
    np.testing.assert_allclose(whole, split, atol=1e-5)
    expected = [reference.continuation_logprob(tiny_gpt2_path, "Numbers:", v) for v in values]
    np.testing.assert_allclose(split, expected, atol=1e-4)


def _result() -> ScoringResult:
    return ScoringResult("p", ["a", "bb", "ccc"], [["a"], ["b", "b"], ["c", "c", "c"]],
                         [[1], [2, 2], [3, 3, 3]],
                         [[-1.0], [-0.5, -0.5], [-0.1, -0.2, -2.1]], "test-model")


def test_aggregations():
    result = _result()
    np.testing.assert_allclose(result.scores("sum"), [-1.0, -1.0, -2.4])
    np.testing.assert_allclose(result.scores("mean"), [-1.0, -0.5, -0.8])
    np.testing.assert_allclose(result.scores("normalized"),
                               [-1.0, -1.0 / 2 ** 0.7, -2.4 / 3 ** 0.7])
    np.testing.assert_allclose(result.scores("normalized", alpha=1.0), result.scores("mean"))
    assert result.argmax("mean") == "bb"
    probs = result.probs("sum")
    assert probs.sum() == pytest.approx(1.0)
    expected = np.exp([-1.0, -1.0, -2.4]) / np.exp([-1.0, -1.0, -2.4]).sum()
    np.testing.assert_allclose(probs, expected)
    np.testing.assert_allclose(result.logprobs("sum"), np.log(expected))
    with pytest.raises(ValueError, match="agg must be one of sum, mean, normalized, got 'max'"):
        result.scores("max")


def test_repr_has_the_seed_form():
    """As LMQL 0.7.3 prints it: values quoted, so leading spaces show."""
    assert repr(_result()) == ("lmql_nb.ScoringResult(model='test-model')\n"
                               "-'a': -1.0\n-'bb': -1.0\n-'ccc': -2.4000000000000004")


def test_to_pandas():
    frame = _result().to_pandas()
    assert list(frame["value"]) == ["a", "bb", "ccc"]
    np.testing.assert_allclose(frame["mean"], [-1.0, -0.5, -0.8])
    assert frame["prob"].sum() == pytest.approx(1.0)


def test_prefix_cache_runs_only_new_tokens_and_gives_the_same_scores(tiny_llama_path,
                                                                      monkeypatch):
    from lmql_nb.backends.transformers.torch_model import TorchModel

    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    llm.generate_sync("warm", max_tokens=1, cache=False)
    llm.backend._model.prefixes.clear()
    prompt = "Once upon a time there was a small town with a quiet river."
    forwarded = []
    original = TorchModel._run  # every forward pass

    def counting(self, input_ids, *args, **kwargs):
        forwarded.append(input_ids.shape)
        return original(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(TorchModel, "_run", counting)
    first = llm.score_sync(prompt, [" The", " A"])  # result cache on: prefix stored
    prompt_tokens = forwarded[0][1]
    forwarded.clear()
    again = llm.score_sync(prompt, [" The capital", " Numbers"])
    longer = llm.score_sync(prompt + " Once", [" upon"])
    # neither ran the prompt again: the values of the second call, then the longer
    # prompt's new token only (its one-token value needs no pass of its own)
    assert len(forwarded) == 2 and all(shape[1] < prompt_tokens for shape in forwarded)
    for result in (first, again, longer):
        expected = [reference.continuation_logprob(tiny_llama_path, result.prompt, v)
                    for v in result.continuations]
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    forwarded.clear()
    llm.score_sync(prompt, [" The", " A"], cache=False)  # every cache off: the prompt runs
    assert forwarded[0][1] == prompt_tokens


def test_one_token_values_cost_only_the_prompt_pass(tiny_gpt2_path, monkeypatch):
    from lmql_nb.backends.transformers.torch_model import TorchModel

    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    _, tokenizer = reference.load(tiny_gpt2_path)
    values = [v for v in [" a", " the", " 4", " of"]
              if len(tokenizer(v).input_ids) == 1]
    assert len(values) >= 2
    llm.score_sync("warm", values, cache=False)
    passes = []
    original = TorchModel._run  # every forward pass
    monkeypatch.setattr(TorchModel, "_run",
                        lambda self, ids, *a, **k: (passes.append(ids.shape),
                                                    original(self, ids, *a, **k))[1])
    result = llm.score_sync("The capital of", values, cache=False)
    assert len(passes) == 1  # the prompt's
    expected = [reference.continuation_logprob(tiny_gpt2_path, "The capital of", v)
                for v in values]
    np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
