"""LMQL's constraint forms, enforced while decoding (issue 24), on the tiny models.

Each test picks a case where the unconstrained model violates the constraint, and checks
the constrained output against an independent computation: transformers' own greedy
decoding (with `min_new_tokens`, its end-of-sequence mask, for lower token bounds), or
the unconstrained output cut by hand.
"""

from __future__ import annotations

import re

import pytest
import torch

import lmql_nb
from lmql_nb.core.options import parse_generate_options

import reference

PROMPT = "Once upon"


@pytest.fixture(scope="module")
def eager_eos_path(tiny_gpt2_path, tmp_path_factory):
    """The tiny GPT-2 with its final layer's bias pushed towards end-of-sequence: its
    greedy completion of PROMPT is empty (it ends at once)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2_path), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_gpt2_path))
    eos = model.transformer.wte.weight[tokenizer.eos_token_id].detach()
    with torch.no_grad():
        model.transformer.ln_f.bias += 10 * eos / eos.norm() ** 2
    folder = tmp_path_factory.mktemp("eager-eos")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _greedy_ids(path, prompt: str, max_new: int, min_new: int = 0) -> list[int]:
    """transformers' greedy generate; the new ids without the end-of-sequence token."""
    model, tokenizer = reference.load(path)
    ids = torch.tensor([reference.prompt_ids(tokenizer, prompt)])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new, min_new_tokens=min_new,
                             pad_token_id=tokenizer.eos_token_id)
    new = out[0, ids.shape[1]:].tolist()
    return new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new


def _run(path, **options):
    llm = lmql_nb.model(f"local:{path}")
    return llm.generate_sync(PROMPT, cache=False, return_details=True,
                             **{"max_tokens": 12, **options})


@pytest.mark.parametrize("where, least", [("len(TOKENS(RESPONSE)) > 4", 5),
                                          ("len(TOKENS(RESPONSE)) >= 3", 3),
                                          ("len(TOKENS(RESPONSE)) == 2", 2),
                                          ("not len(TOKENS(RESPONSE)) < 6", 6)])
def test_a_lower_token_bound_masks_end_of_sequence(eager_eos_path, where, least):
    free = _run(eager_eos_path)
    assert free.text == "" and free.finish_reason == "stop"  # it would end at once
    generation = _run(eager_eos_path, where=where)
    expected = _greedy_ids(eager_eos_path, PROMPT, 12, min_new=least)
    assert [t.token_id for t in generation.tokens] == expected
    assert len(generation.tokens) >= least
    if "==" in where:  # the upper bound ends it
        assert len(generation.tokens) == least and generation.finish_reason == "length"
    else:
        assert generation.finish_reason == "stop"


def test_a_lower_character_bound_masks_end_of_sequence(eager_eos_path):
    generation = _run(eager_eos_path, max_tokens=40, where="len(RESPONSE) > 20")
    assert len(generation.text) > 20 and generation.finish_reason == "stop"


def test_min_tokens_keyword_and_sampling_and_beams(eager_eos_path):
    assert len(_run(eager_eos_path, min_tokens=4).tokens) >= 4
    for decoder, extra in (("sample", {"seed": 3, "n": 4}), ("beam", {"n": 2})):
        for generation in _run(eager_eos_path, where="len(TOKENS(RESPONSE)) > 2",
                               decoder=decoder, **extra):
            assert len(generation.tokens) >= 3


def test_a_lower_token_bound_skips_earlier_stops(tiny_gpt2_path):
    free = _run(tiny_gpt2_path, max_tokens=20)
    texts = [t.text for t in free.tokens]
    stop = "ow"
    first = next(i for i in range(len(texts)) if stop in "".join(texts[:i + 1]))
    least = first + 2  # the first stop ends in token first + 1: too early
    generation = _run(tiny_gpt2_path, max_tokens=20,
                      where=f'STOPS_AT(RESPONSE, "{stop}") and len(TOKENS(RESPONSE)) >= {least}')
    # by hand: the first stop string that ends in token `least` or later, kept
    floor = len("".join(texts[:least - 1]))
    joined = "".join(texts)
    end = joined.index(stop, floor - len(stop) + 1) + len(stop)
    assert end > len("".join(texts[:first + 1]))  # not the stop it would have taken
    assert generation.text == joined[:end]
    assert len(generation.tokens) >= least and generation.finish_reason == "stop"


@pytest.mark.parametrize("where, check", [
    ("len(RESPONSE) == 3", lambda t: len(t) == 3),
    ("len(RESPONSE) >= 2 and len(RESPONSE) <= 4", lambda t: 2 <= len(t) <= 4),
    ('RESPONSE == "Hello you"', lambda t: t == "Hello you"),
    ('RESPONSE == "Hello you" or RESPONSE == "Hello There"',
     lambda t: t in ("Hello you", "Hello There")),
    ('RESPONSE != "0" and len(RESPONSE) < 2', lambda t: t != "0" and len(t) < 2),
    ('RESPONSE not in ["0", "02"] and len(RESPONSE) < 3',
     lambda t: t not in ("0", "02") and len(t) < 3),
    ('len(RESPONSE) < 2 or RESPONSE in ["a long answer"]',
     lambda t: len(t) < 2 or t == "a long answer"),
    ("not INT(RESPONSE) and len(RESPONSE) < 3",
     lambda t: len(t) < 3 and not re.fullmatch(r" ?-?\d+", t)),
    ('STARTS_WITH(RESPONSE, " river") and len(RESPONSE) < 9',
     lambda t: t.startswith(" river") and len(t) < 9),
    ("len(RESPONSE) != 2 and len(RESPONSE) < 4", lambda t: len(t) != 2 and len(t) < 4),
])
def test_forms_on_the_text_hold_where_the_free_model_breaks_them(tiny_gpt2_path, where, check):
    free = _run(tiny_gpt2_path, max_tokens=12).text
    assert not check(free)
    generation = _run(tiny_gpt2_path, max_tokens=30, where=where)
    assert check(generation.text), generation.text
    assert generation.finish_reason == "stop"


def test_equality_with_a_stop_inside_is_cut_like_lmql(tiny_gpt2_path):
    # LMQL's test_stop_overlapping_before: the choice 'abc",' stops before '"'
    generation = _run(tiny_gpt2_path, where='STOPS_BEFORE(RESPONSE, ",") and '
                      'STOPS_BEFORE(RESPONSE, \'"\') and len(TOKENS(RESPONSE)) < 10 and '
                      'RESPONSE == \'abc",\'')
    assert generation.text == "abc"


@pytest.mark.parametrize("where, message", [
    ("len(TOKENS(RESPONSE)) != 3", r"len\(TOKENS\(\.\.\.\)\) != n is not supported"),
    ("INT(RESPONSE) or len(TOKENS(RESPONSE)) < 3",
     r"'or' cannot combine len\(TOKENS\(RESPONSE\)\) < 3 \(a token count\)"),
    ('not STOPS_AT(RESPONSE, "x")', r"'not' cannot combine STOPS_AT"),
    ('(STOPS_AT(RESPONSE, "a") and INT(RESPONSE)) or STOPS_AT(RESPONSE, "b")',
     "'or' between a branch with a stopping phrase and other constraints"),
    ('INT(RESPONSE) and STOPS_AT(RESPONSE, ".") and len(TOKENS(RESPONSE)) > 2',
     "lower token bound .* cannot be combined with stop strings and type=int"),
    ("len(TOKENS(RESPONSE)) > 5 and len(TOKENS(RESPONSE)) < 3", "leave no length"),
    ('RESPONSE > "a"', "compared with == or != only"),
])
def test_combinations_that_cannot_be_enforced_are_refused(where, message):
    with pytest.raises(ValueError, match=message):
        parse_generate_options(20, where=where)


def test_a_lower_bound_beyond_max_tokens_is_refused():
    with pytest.raises(ValueError, match="do not fit in max_tokens=4"):
        parse_generate_options(4, where="len(TOKENS(RESPONSE)) > 4")


@pytest.mark.parametrize("where, kept", [
    ("len(TOKENS(RESPONSE)) < 20 or len(TOKENS(RESPONSE)) < 30", {"max_tokens": 29}),
    ('len(TOKENS(RESPONSE)) > 10 or STOPS_AT(RESPONSE, "review")',
     {"stops_at": ("review",), "min_tokens": None}),
    ('STOPS_AT(RESPONSE, ["a", "b"])', {"stops_at": ("a", "b")}),
])
def test_or_between_bounds_and_stops(where, kept):
    spec = parse_generate_options(40, where=where).constraint
    options = parse_generate_options(40, where=where)
    for field, value in kept.items():
        if field == "max_tokens":
            assert options.max_tokens == value
        else:
            assert getattr(spec, field) == value
