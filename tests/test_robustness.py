"""Odd input at the public entries: clear errors where input is invalid, correct results
where it is merely unusual, and a model that stays usable throughout."""

from __future__ import annotations

import asyncio

import pytest

import lmql_nb

import reference

ODD_BUT_VALID = [
    "control \x00\x07\x1b[31m characters",
    "emoji 👩‍👩‍👧‍👦 🇫🇷 and variation selectors ❤️",
    "right-to-left: مرحبا بالعالم עברית",
    "combining: e\u0301 a\u0308 Z\u0335\u0321",
    "zero width: a\u200bb\u200dc\ufeff",
    "\n\n\t  ",
]


@pytest.mark.parametrize("prompt", ODD_BUT_VALID)
def test_odd_unicode_generates_and_scores_like_transformers(tiny_llama_path, prompt):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    assert llm.generate_sync(prompt, max_tokens=5, cache=False) == \
        reference.greedy(tiny_llama_path, prompt, 5)
    result = llm.score_sync(prompt, [" x", prompt], cache=False)
    expected = [reference.continuation_logprob(tiny_llama_path, prompt, v)
                for v in (" x", prompt)]
    assert result.scores().tolist() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("text", ["unpaired \ud800 high", "unpaired \udc00 low"])
def test_unpaired_surrogates_are_a_clear_error(tiny_llama_path, text):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    with pytest.raises(ValueError, match=r"prompt has an unpaired surrogate \(U\+D[89A-F]00\) "
                                         r"at index \d+; text must be valid Unicode"):
        llm.generate_sync(text, max_tokens=2)
    with pytest.raises(ValueError, match=r"values\[1\] has an unpaired surrogate"):
        llm.score_sync("ok", [" fine", text])
    assert isinstance(llm.generate_sync("still usable", max_tokens=2), str)


@pytest.mark.parametrize("constraint, named", [
    (dict(stops_at=["ok", "\ud800"]), r"stops_at\[1\]"),
    (dict(stops_before=["x\udc00"]), r"stops_before\[0\]"),
    (dict(choices=[" a", " b\ud800"]), r"choices\[1\]"),
    (dict(regex="[a-z]\ud800"), "regex"),
    (dict(json_schema={"enum": ["\ud800"]}), "json_schema"),
    (dict(where='STOPS_AT(RESPONSE, "\\ud800")'), r"the string '\\ud800' in where"),
])
def test_unpaired_surrogates_in_constraints_are_named(constraint, named, tmp_path):
    llm = lmql_nb.model(f"local:{tmp_path}")  # an empty folder: checked before loading
    with pytest.raises(ValueError, match=named + r" has an unpaired surrogate \(U\+D[89A-F]00\)"):
        llm.generate_sync("Hi", max_tokens=2, **constraint)


def test_many_values_and_a_long_value(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    values = [f" {i}" for i in range(300)] + [" word" * 20]
    result = llm.score_sync("Numbers:", values, cache=False)
    assert len(result.scores()) == 301
    some = [0, 150, 299, 300]
    expected = [reference.continuation_logprob(tiny_gpt2_path, "Numbers:", values[i])
                for i in some]
    # a 20-token value sums to about -800: float32 sums agree to a relative 1e-6
    assert result.scores()[some].tolist() == pytest.approx(expected, abs=1e-4, rel=1e-6)


def test_a_value_longer_than_the_context_is_a_clear_error(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    with pytest.raises(ValueError, match="longest value is .* tokens long, more than the "
                                         "model's context of 128"):
        llm.score_sync("Hi", [" ok", " word" * 200])
    assert llm.score_sync("Hi", [" ok"], cache=False).continuations == [" ok"]


def test_a_failing_on_token_callback_fails_only_its_own_call(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    alone = llm.generate_sync("Once upon", max_tokens=6, cache=False)

    def broken(index, token):
        raise KeyError("the callback broke")

    async def together():
        return await asyncio.gather(
            llm.generate("The capital of", max_tokens=6, cache=False, on_token=broken),
            llm.generate("Once upon", max_tokens=6, cache=False), return_exceptions=True)

    failed, fine = asyncio.run(together())
    assert isinstance(failed, KeyError) and "the callback broke" in str(failed)
    assert fine == alone
