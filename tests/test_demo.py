"""`lmql_nb.demo.gsm8k_samples` (LMQL's `lmql.demo`, which the calculator example of
LMQL's tool-use page imports): demonstrations whose every `<<expression=result>>` is
right, each ending in its answer, and a clear error for a bad count."""

from __future__ import annotations

import re

import pytest

from lmql_nb.demo import SAMPLES, gsm8k_samples


def test_every_calculation_is_right_and_each_sample_ends_in_its_answer():
    text = gsm8k_samples()
    calculations = re.findall(r"<<([^=]+)=([^>]+)>>(\S+)", text)
    assert len(calculations) == 5
    for expression, result, written in calculations:
        assert eval(expression) == float(result) == float(written)  # noqa: S307
    assert text.count("Q: ") == len(SAMPLES) and text.count("So the answer is ") == len(SAMPLES)
    for _question, answer in SAMPLES:
        last = re.findall(r"=(\d+(?:\.\d+)?)>>", answer)[-1]
        assert answer.endswith(f"So the answer is {float(last):g}.")


def test_a_count_takes_the_first_samples_and_a_bad_one_is_refused():
    assert gsm8k_samples(1) == f"Q: {SAMPLES[0][0]}\nA: Let's think step by step.\n" \
                               f"{SAMPLES[0][1]}\n\n"
    assert gsm8k_samples(0) == ""
    for bad in (-1, len(SAMPLES) + 1, "2", True):
        with pytest.raises(ValueError, match="n must be an int from 0 to 3"):
            gsm8k_samples(bad)
