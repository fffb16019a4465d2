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


def _stop_at_token(texts: list[str], n: int) -> str:
    """A stop string that first ends in token `n` of `texts` (its last character, when
    that character appears nowhere before)."""
    before = "".join(texts[:n - 1])
    for length in range(1, len(texts[n - 1]) + 1):
        stop = texts[n - 1][:length]
        if stop.strip() and stop not in before + texts[n - 1][:length - 1]:
            return stop
    raise AssertionError(f"no stop string first ends in token {n} of {texts!r}")


def test_a_token_count_that_is_excluded_skips_the_stop_that_ends_there(tiny_gpt2_path):
    free = _run(tiny_gpt2_path, max_tokens=20)
    texts = [t.text for t in free.tokens]
    n = next(n for n in range(3, 12) if _has_stop(texts, n))
    stop = _stop_at_token(texts, n)
    greedy = _run(tiny_gpt2_path, max_tokens=20, stops_at=stop)
    assert len(greedy.tokens) == n  # unconstrained, the stop ends the text at n tokens
    generation = _run(tiny_gpt2_path, max_tokens=20,
                      where=f'STOPS_AT(RESPONSE, "{stop}") and len(TOKENS(RESPONSE)) != {n}')
    # by hand: the first occurrence of the stop that ends in a token other than the nth
    joined = "".join(texts)
    skip_to = len("".join(texts[:n]))
    later = joined.find(stop, skip_to - len(stop) + 1)
    while later >= 0 and later + len(stop) <= skip_to:
        later = joined.find(stop, later + 1)
    expected = joined if later < 0 else joined[:later + len(stop)]
    assert generation.text == expected
    assert [t.token_id for t in generation.tokens][:n] == [t.token_id for t in free.tokens][:n]
    assert len(generation.tokens) != n
    # the same in a query program, and on every beam
    value = lmql_nb.run_sync(f'''
        "{PROMPT}[X]" where STOPS_AT(X, {stop!r}) and len(TOKENS(X)) != {n}
        return X
    ''', model=lmql_nb.model(f"local:{tiny_gpt2_path}"), cache=False, max_len=60)
    assert value == expected
    for beam in _run(tiny_gpt2_path, max_tokens=20, decoder="beam", n=3,
                     where=f'STOPS_AT(RESPONSE, "{stop}") and len(TOKENS(RESPONSE)) != {n}'):
        assert len(beam.tokens) != n


def _has_stop(texts: list[str], n: int) -> bool:
    try:
        _stop_at_token(texts, n)
        return True
    except AssertionError:
        return False


def test_a_token_count_that_is_excluded_masks_end_of_sequence(eager_eos_path):
    """Between two choices the eager model ends at the shorter one; when that one's token
    count is excluded, end-of-sequence is masked there and only the longer one is left."""
    choices = '[" river", " river bank"]'
    free = _run(eager_eos_path, where=f"RESPONSE in {choices}")
    n = len(free.tokens)
    assert free.text == " river" and free.finish_reason == "stop"
    generation = _run(eager_eos_path, where=f"RESPONSE in {choices} and "
                      f"len(TOKENS(RESPONSE)) != {n}")
    assert generation.text == " river bank" and generation.finish_reason == "stop"
    assert len(generation.tokens) != n


def test_a_token_count_that_is_excluded_folds_into_a_bound(eager_eos_path):
    # the eager model ends at 0 tokens: != 0 makes it a lower bound of 1, as > 0 would
    generation = _run(eager_eos_path, where="len(TOKENS(RESPONSE)) != 0")
    assert [t.token_id for t in generation.tokens] == _greedy_ids(eager_eos_path, PROMPT, 12,
                                                                  min_new=1)
    options = parse_generate_options(40, where="len(TOKENS(RESPONSE)) <= 5 and "
                                     "len(TOKENS(RESPONSE)) != 5 and len(TOKENS(RESPONSE)) != 2")
    assert options.max_tokens == 4 and options.constraint.not_tokens == (2,)


def test_a_token_count_that_is_excluded_holds_under_sampling(eager_eos_path):
    free = _run(eager_eos_path, decoder="sample", n=16, seed=5, temperature=4.0)
    assert any(len(g.tokens) == 1 for g in free)  # some samples end at exactly one token
    for generation in _run(eager_eos_path, decoder="sample", n=16, seed=5, temperature=4.0,
                           where="len(TOKENS(RESPONSE)) != 1"):
        assert len(generation.tokens) != 1


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
    ('INT(RESPONSE) and STOPS_AT(RESPONSE, ".") and len(TOKENS(RESPONSE)) != 3',
     r"token bound \(not 3 tokens\) cannot be combined with stop strings and type=int"),
    ("len(TOKENS(RESPONSE)) <= 3 and len(TOKENS(RESPONSE)) >= 3 and "
     "len(TOKENS(RESPONSE)) != 3", "leave no length"),
    ("INT(RESPONSE) or len(TOKENS(RESPONSE)) < 3",
     r"'or' cannot combine len\(TOKENS\(RESPONSE\)\) < 3 \(a token count\)"),
    ('not STOPS_AT(RESPONSE, "x")', r"'not' cannot combine STOPS_AT"),
    ('(STOPS_AT(RESPONSE, "a") and INT(RESPONSE)) or STOPS_AT(RESPONSE, "b")',
     "'or' between a branch with a stopping phrase and other constraints"),
    ('INT(RESPONSE) and STOPS_AT(RESPONSE, ".") and len(TOKENS(RESPONSE)) > 2',
     "token bound .* cannot be combined with stop strings and type=int"),
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


@pytest.mark.parametrize("dialect", ["vllm", "openai"])
def test_an_excluded_token_count_is_refused_by_servers(dialect):
    from lmql_nb.backends.openai.dialect import to_server_params

    spec = parse_generate_options(9, where="len(TOKENS(RESPONSE)) != 3").constraint
    with pytest.raises(ValueError, match=r"len\(TOKENS\(\.\.\.\)\) != n"):
        to_server_params(spec, dialect)
