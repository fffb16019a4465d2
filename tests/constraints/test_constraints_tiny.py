"""Constrained decoding mechanics on the tiny models (fast): every decoder, exact stops,
unconstrained log-probabilities, blocked alternatives."""

from __future__ import annotations

import re

import pytest
import torch

import lmql_nb
from lmql_nb import Generation
from lmql_nb.constraints import parse_constraints
from lmql_nb.constraints.matcher import Constraint

import reference

PROMPT = "The capital of"


def _generate(path, **options) -> list[Generation]:
    llm = lmql_nb.model(f"local:{path}")
    result = llm.generate_sync(PROMPT, cache=False, return_details=True, **options)
    return result if isinstance(result, list) else [result]


def _texts_join(generation: Generation) -> None:
    assert generation.text == "".join(t.text for t in generation.tokens)


@pytest.mark.parametrize("decoder, n", [("argmax", 1), ("sample", 4), ("beam", 3)])
def test_choices_under_every_decoder(tiny_path, decoder, n):
    choices = ["Paris", "Berlin", "a town"]
    options = {"seed": 1, "temperature": 2.0} if decoder == "sample" else {}
    generations = _generate(tiny_path, max_tokens=8, decoder=decoder, n=n, choices=choices,
                            **options)
    if decoder == "beam":  # beams a constraint cannot complete are dropped (engine/beam.py)
        assert 1 <= len(generations) <= n
    else:  # argmax and sampling always return n sequences
        assert len(generations) == n
    for generation in generations:
        assert generation.text in choices
        assert generation.finish_reason == "stop"  # the grammar ended it
        _texts_join(generation)


@pytest.mark.parametrize("decoder, n", [("argmax", 1), ("sample", 8), ("beam", 3)])
def test_masked_tokens_are_never_chosen(tiny_gpt2_path, decoder, n):
    options = {"seed": 0, "temperature": 3.0} if decoder == "sample" else {}
    generations = _generate(tiny_gpt2_path, max_tokens=6, decoder=decoder, n=n,
                            regex="[0-9]+( [a-z]+)?", top_logprobs=5, **options)
    for generation in generations:
        assert re.fullmatch(r"[0-9]+( [a-z]*)?", generation.text), generation.text
        for token in generation.tokens:
            chosen = [a for a in token.top if a.token_id == token.token_id]
            assert not any(a.blocked for a in chosen)


def test_logprobs_stay_the_models_own_and_blocked_alternatives_match_the_mask(tiny_gpt2_path):
    generation = _generate(tiny_gpt2_path, max_tokens=6, regex="[0-9]+", top_logprobs=5)[0]
    _, tokenizer = reference.load(tiny_gpt2_path)
    ids = reference.prompt_ids(tokenizer, PROMPT)
    logprobs = reference.token_logprobs(tiny_gpt2_path,
                                        ids + [t.token_id for t in generation.tokens])
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    matcher = Constraint(parse_constraints({"regex": "[0-9]+"}), llm.get_tokenizer(),
                         logprobs.shape[-1]).start()
    blocked_seen = 0
    for i, token in enumerate(generation.tokens):
        row = logprobs[len(ids) + i - 1]
        assert token.logprob == pytest.approx(float(row[token.token_id]), abs=1e-4)
        assert [a.token_id for a in token.top] == torch.topk(row, 5).indices.tolist()
        assert [a.blocked for a in token.top] == [bool(matcher.blocked[a.token_id])
                                                  for a in token.top]
        blocked_seen += sum(a.blocked for a in token.top)
        matcher.advance(token.token_id)
    assert blocked_seen > 0  # the random model prefers non-digits: the mask did work
    assert generation.text.isdigit()


def test_stops_at_keeps_and_stops_before_drops_exactly(tiny_path):
    free = _generate(tiny_path, max_tokens=12)[0]
    # a stop string across a token boundary, from the free run's own text
    ends = sorted({len("".join(t.text for t in free.tokens[:i + 1]))
                   for i in range(len(free.tokens))} & set(range(1, len(free.text))))
    boundary = ends[min(1, len(ends) - 1)]
    stop = free.text[boundary - 1:boundary + 1]
    first = free.text.find(stop)
    at = _generate(tiny_path, max_tokens=12, stops_at=[stop])[0]
    before = _generate(tiny_path, max_tokens=12, stops_before=[stop])[0]
    assert at.text == free.text[:first + len(stop)]
    assert before.text == free.text[:first]
    assert at.finish_reason == before.finish_reason == "stop"
    _texts_join(at)
    _texts_join(before)
    # the model's choices are untouched: the same tokens as the free run, up to the stop
    assert [t.token_id for t in at.tokens] == [t.token_id for t in free.tokens][:len(at.tokens)]


def test_stops_under_sampling_and_beam(tiny_gpt2_path):
    """stops_before cuts a sequence right before the stop string's first occurrence; the
    model's choices before it are untouched."""
    # one sequence per seed: its draws are the same with or without the stop (the n rows
    # of one request share a generator, so when one row stops the others' draws shift)
    for seed in (0, 1, 4, 6, 7):
        options = {"decoder": "sample", "n": 1, "seed": seed}
        free = _generate(tiny_gpt2_path, max_tokens=10, **options)[0]
        cut = _generate(tiny_gpt2_path, max_tokens=10, stops_before=["o"], **options)[0]
        assert "o" in free.text, (seed, free.text)  # seeds chosen so that the stop occurs
        assert cut.text == free.text[:free.text.find("o")], seed
        assert cut.finish_reason == "stop"
        assert [t.token_id for t in cut.tokens] == \
            [t.token_id for t in free.tokens][:len(cut.tokens)]
        _texts_join(cut)
    free = _generate(tiny_gpt2_path, max_tokens=10, decoder="beam", n=2)
    cut = _generate(tiny_gpt2_path, max_tokens=10, decoder="beam", n=2, stops_before=["o"])
    assert "o" in free[0].text
    # here the best beam is the free best beam cut at its first "o"
    assert (cut[0].text, cut[0].finish_reason) == (free[0].text[:free[0].text.find("o")], "stop")
    tokenizer = lmql_nb.model(f"local:{tiny_gpt2_path}").get_tokenizer()
    for options in ({"decoder": "sample", "n": 4, "seed": 2}, {"decoder": "beam", "n": 2}):
        generations = _generate(tiny_gpt2_path, max_tokens=10, stops_before=["o"], **options)
        assert len(generations) == options["n"]
        assert "stop" in {g.finish_reason for g in generations}
        for generation in generations:
            assert "o" not in generation.text
            _texts_join(generation)
            if generation.finish_reason == "stop":
                assert len(generation.tokens) <= 10
                # tokens wholly after the cut are dropped; one straddling it loses its "o..."
                whole = tokenizer.decode([t.token_id for t in generation.tokens])
                assert whole.startswith(generation.text), (whole, generation.text)
                assert whole == generation.text or whole[len(generation.text)] == "o", whole
            else:
                assert generation.finish_reason == "length" and len(generation.tokens) == 10


def test_regex_with_stops_and_max_tokens_combine(tiny_gpt2_path):
    for generation in _generate(tiny_gpt2_path, max_tokens=5, decoder="sample", n=6, seed=4,
                                temperature=2.0, regex="[a-z ]+", stops_before=[" "]):
        assert len(generation.tokens) <= 5
        assert re.fullmatch("[a-z]*", generation.text), generation.text


def test_a_forced_end_finishes_with_stop_without_end_of_sequence(tiny_gpt2_path):
    generation = _generate(tiny_gpt2_path, max_tokens=10, choices=["Berlin"])[0]
    assert generation.text == "Berlin" and generation.finish_reason == "stop"
    empty = _generate(tiny_gpt2_path, max_tokens=10, choices=[""])[0]
    assert empty.text == "" and empty.finish_reason == "stop" and not empty.tokens


def test_where_on_a_tiny_model(tiny_gpt2_path):
    generation = _generate(tiny_gpt2_path, max_tokens=20,
                           where='len(RESPONSE) < 6 and REGEX(RESPONSE, "[a-z]+")')[0]
    assert re.fullmatch("[a-z]{1,5}", generation.text)
    short = _generate(tiny_gpt2_path, where="len(TOKENS(RESPONSE)) < 3")[0]
    assert len(short.tokens) == 2 and short.finish_reason == "length"


def test_beams_that_cannot_complete_are_dropped(tiny_gpt2_path):
    argmax = _generate(tiny_gpt2_path, max_tokens=2, regex="[0-9]{12}")[0]
    assert argmax.finish_reason == "length" and len(argmax.text) < 12  # argmax returns a prefix
    with pytest.raises(ValueError, match="no sequence that satisfies"):
        _generate(tiny_gpt2_path, max_tokens=2, decoder="beam", n=2, regex="[0-9]{12}")
    # two choices cannot fill three beams: only complete sequences come back
    generations = _generate(tiny_gpt2_path, max_tokens=6, decoder="beam", n=3,
                            choices=["Paris", "Berlin"])
    assert {g.text for g in generations} <= {"Paris", "Berlin"}
    assert all(g.finish_reason == "stop" for g in generations)


def test_constrained_and_free_requests_batch_together(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")

    async def both():
        import asyncio

        return await asyncio.gather(
            llm.generate(PROMPT, max_tokens=6, cache=False),
            llm.generate(PROMPT, max_tokens=6, regex="[0-9]+", cache=False),
            llm.generate(PROMPT, max_tokens=6, stops_at=["o"], cache=False))

    import asyncio

    free, digits, stopped = asyncio.run(both())
    assert free == reference.greedy(tiny_gpt2_path, PROMPT, 6)
    assert digits.isdigit()
    assert free.startswith(stopped) and stopped.endswith("o")


def test_json_schema_on_a_tiny_model(tiny_gpt2_path):
    import json

    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0,
                                                     "maximum": 99}},
              "required": ["a"], "additionalProperties": False}
    generation = _generate(tiny_gpt2_path, max_tokens=12, json_schema=schema)[0]
    assert generation.finish_reason == "stop"
    value = json.loads(generation.text)
    assert set(value) == {"a"} and 0 <= value["a"] <= 99


def test_constrained_logprobs_are_renormalised_among_the_allowed_tokens(tiny_gpt2_path):
    """Beside the model's own numbers, each token carries its log-probability among the
    allowed tokens and the best allowed tokens; the first step is checked against
    transformers' logits and an allowed set computed from the vocabulary itself."""
    generation = _generate(tiny_gpt2_path, max_tokens=4, regex="[0-9]+", top_logprobs=5)[0]
    _, tokenizer = reference.load(tiny_gpt2_path)
    ids = reference.prompt_ids(tokenizer, PROMPT)
    logprobs = reference.token_logprobs(tiny_gpt2_path,
                                        ids + [t.token_id for t in generation.tokens])
    row = logprobs[len(ids) - 1].double()
    allowed = torch.tensor([i for i in range(row.shape[-1])
                            if re.fullmatch("[0-9]+", tokenizer.decode([i]))])
    mass = torch.logsumexp(row[allowed], 0)
    first = generation.tokens[0]
    assert first.logprob == pytest.approx(float(row[first.token_id]), abs=1e-4)  # unchanged
    assert first.constrained_logprob == pytest.approx(float(row[first.token_id] - mass), abs=1e-4)
    best = torch.topk(row[allowed], 5)
    assert [a.token_id for a in first.allowed] == allowed[best.indices].tolist()
    assert [a.logprob for a in first.allowed] == pytest.approx((best.values - mass).tolist(),
                                                               abs=1e-4)
    assert all(not a.blocked for a in first.allowed)
    for token in generation.tokens:  # renormalising over fewer tokens never lowers it
        assert token.constrained_logprob >= token.logprob - 1e-6
    assert generation.constrained_logprob == pytest.approx(
        sum(t.constrained_logprob for t in generation.tokens))
    free = _generate(tiny_gpt2_path, max_tokens=2, top_logprobs=2)[0]
    assert free.constrained_logprob is None and free.tokens[0].allowed == ()


def test_constrained_logprobs_without_details_and_under_beams(tiny_gpt2_path):
    plain = _generate(tiny_gpt2_path, max_tokens=3, regex="[0-9]+", top_logprobs=0)[0]
    detailed = _generate(tiny_gpt2_path, max_tokens=3, regex="[0-9]+", top_logprobs=3)[0]
    assert [t.constrained_logprob for t in plain.tokens] == pytest.approx(
        [t.constrained_logprob for t in detailed.tokens], abs=1e-5)
    assert plain.tokens[0].allowed == ()  # the alternatives need top_logprobs
    for beam in _generate(tiny_gpt2_path, max_tokens=3, regex="[0-9]+", decoder="beam", n=2,
                          top_logprobs=3):
        assert all(t.constrained_logprob is not None and t.allowed for t in beam.tokens)


@pytest.mark.parametrize("excluded", [" ", "e", "\n"])
def test_excluded_text_never_appears(tiny_gpt2_path, excluded):
    """`not "s" in RESPONSE` alone (llguidance ignores a bare complement lexeme: this
    generated newlines under `not "\\n" in RESPONSE` on Gemma)."""
    generations = _generate(tiny_gpt2_path, max_tokens=20, decoder="sample", n=4, seed=3,
                            temperature=3.0, top_logprobs=20,
                            where=f"not {excluded!r} in RESPONSE")
    for generation in generations:
        assert excluded not in generation.text
        for token in generation.tokens:
            for alternative in token.top:
                if excluded in alternative.text:
                    assert alternative.blocked, (token, alternative)
