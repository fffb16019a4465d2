"""LMQL's further decoders in query programs (issue 24): beam_sample, var, beam_var, best_k.

Scores are checked against transformers' forward pass by hand (the log-probability of
each hole's tokens after the prompt text it saw), orders against those scores, and each
decoder against a property that its plain neighbour (beam, sample) would break:
beam_sample's tokens are draws (within `top_k`, a single greedy path at temperature 0),
var's candidates are samples (one greedy program at temperature 0), beam_var ranks by
length-normalised score, best_k keeps the k most likely of the very samples
`sample(n)` draws with the same seed.
"""

from __future__ import annotations

import pytest
import torch

import lmql_nb
from lmql_nb.core import options
from lmql_nb.query.functions import QueryArgumentWarning
from lmql_nb.query.trace import HoleSegment

import reference

PROGRAM = '''
"Once upon[X] and[Y]" where len(TOKENS(X)) < 4 and len(TOKENS(X)) != 2 and Y in {choices}
'''
CHOICES = [" a", " the", " then"]


@pytest.fixture
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


def run(llm, clause: str, program: str = PROGRAM, **kwargs):
    return lmql_nb.run_sync(clause + "\n" + program.format(choices=CHOICES), model=llm,
                            cache=False, **kwargs)


def by_hand(path, result) -> float:
    """The total log-probability of `result`'s holes by transformers' forward pass: each
    hole's tokens after the tokens of the prompt text before it."""
    _, tokenizer = reference.load(path)
    total, text = 0.0, ""
    for segment in result.trace.segments:
        if isinstance(segment, HoleSegment) and segment.tokens:
            context = reference.prompt_ids(tokenizer, text)
            ids = context + [t.token_id for t in segment.tokens]
            logprobs = reference.token_logprobs(path, ids)
            total += float(sum(logprobs[i - 1, ids[i]] for i in range(len(context), len(ids))))
        text += segment.text
    return total


def check_constraints(result) -> None:
    x = [s for s in result.trace.segments if isinstance(s, HoleSegment) and s.name == "X"][0]
    assert len(x.tokens) < 4 and len(x.tokens) != 2
    assert result.variables["Y"] in CHOICES


def check_ranked(path, results, most: int) -> None:
    """Several distinct LMQLResults (at most `most`), each scored as transformers scores
    it by hand, best first, each within the constraints."""
    assert isinstance(results, list) and 1 < len(results) <= most
    assert all(isinstance(r, lmql_nb.LMQLResult) for r in results)
    assert len({r.prompt for r in results}) == len(results)
    scores = [by_hand(path, r) for r in results]
    assert scores == pytest.approx([r.trace.logprob for r in results], abs=1e-3)
    assert scores == sorted(scores, reverse=True)
    for result in results:
        check_constraints(result)


def test_beam_sample_in_a_program_gives_distinct_ranked_results_scored_by_hand(
        llm, tiny_gpt2_path):
    results = run(llm, "beam_sample(n=3, temperature=1.5, seed=4)")
    check_ranked(tiny_gpt2_path, results, 3)
    # seeded: the same again; another seed, other draws; beam search, other results
    again = run(llm, "beam_sample(n=3, temperature=1.5, seed=4)")
    assert [r.prompt for r in again] == [r.prompt for r in results]
    others = [run(llm, f"beam_sample(n=3, temperature=1.5, seed={s})") for s in (5, 6, 7)]
    assert any([r.prompt for r in o] != [r.prompt for r in results] for o in others)
    beam = run(llm, "beam(n=3)")
    assert any([r.prompt for r in o] != [r.prompt for r in beam] for o in [results] + others)


def test_beam_sample_draws_its_expansions(llm, tiny_gpt2_path):
    """generate(decoder="beam_sample"): with top_k=2 every token is one of the model's two
    most likely at its place (transformers by hand), and beams differ from beam search's;
    at temperature 0 each beam draws its best token only: one sequence, greedy's."""
    prompt = "Once upon"
    _, tokenizer = reference.load(tiny_gpt2_path)
    context = reference.prompt_ids(tokenizer, prompt)
    draws = llm.generate_sync(prompt, max_tokens=6, decoder="beam_sample", n=3, top_k=2,
                              seed=11, return_details=True, cache=False)
    assert 1 < len(draws) <= 3 and len({g.text for g in draws}) == len(draws)
    for generation in draws:
        ids = context + [t.token_id for t in generation.tokens]
        logprobs = reference.token_logprobs(tiny_gpt2_path, ids)
        for i in range(len(context), len(ids)):
            assert ids[i] in torch.topk(logprobs[i - 1], 2).indices.tolist()
        assert generation.logprob == pytest.approx(
            float(sum(logprobs[i - 1, ids[i]] for i in range(len(context), len(ids)))),
            abs=1e-3)
    greedy = llm.generate_sync(prompt, max_tokens=6, decoder="beam_sample", n=3,
                               temperature=0, return_details=True, cache=False)
    assert [[t.token_id for t in g.tokens] for g in greedy] == [
        reference.greedy_ids(tiny_gpt2_path, context, 6)]


def test_var_samples_each_hole_and_keeps_the_best_states(llm, tiny_gpt2_path):
    results = run(llm, "var(b=4, n=3, temperature=2.0, seed=1)")
    check_ranked(tiny_gpt2_path, results, 3)
    # at temperature 0 every sample of a hole is the greedy value: one state, argmax's
    # (in a list, as LMQL's searches give theirs)
    single = run(llm, "var(b=4, n=3, temperature=0)")
    assert [r.prompt for r in single] == [run(llm, "argmax").prompt]
    # LMQL's default: n = b
    assert len(run(llm, "var(b=2, temperature=2.0, seed=3)")) <= 2


def test_beam_var_ranks_by_length_normalised_score(llm, tiny_gpt2_path):
    """Two choices: the model's greedy two tokens, and one token less likely than those
    two together but more likely than their length-normalised score. beam ranks by the
    sum (the one token first), beam_var by sum / tokens ** 0.7 (the two tokens first)."""
    _, tokenizer = reference.load(tiny_gpt2_path)
    prompt = "Once upon"
    context = reference.prompt_ids(tokenizer, prompt)
    greedy = reference.greedy_ids(tiny_gpt2_path, context, 2)
    logprobs = reference.token_logprobs(tiny_gpt2_path, context + greedy)
    pair = float(logprobs[len(context) - 1, greedy[0]] + logprobs[len(context), greedy[1]])
    first = logprobs[len(context) - 1]
    single = next((t for t in torch.argsort(first, descending=True).tolist()[1:200]
                   if pair < float(first[t]) < pair / 2 ** 0.7
                   and tokenizer.decode([t]).strip() and tokenizer.decode([t]).isprintable()
                   and tokenizer(tokenizer.decode([t])).input_ids == [t]), None)
    assert single is not None, "no token between the two scores in the first 200"
    two, one = tokenizer.decode(greedy), tokenizer.decode([single])
    program = f'"{prompt}[X]" where X in [{two!r}, {one!r}]\n'
    beam = run(llm, "beam(n=2)", program)
    beam_var = run(llm, "beam_var(n=2)", program)
    assert [r.variables["X"] for r in beam] == [one, two]
    assert [r.variables["X"] for r in beam_var] == [two, one]
    assert [by_hand(tiny_gpt2_path, r) for r in beam_var] == pytest.approx([pair, float(
        first[single])], abs=1e-3)


def test_best_k_keeps_the_k_most_likely_of_the_same_samples(llm, tiny_gpt2_path):
    samples = run(llm, "sample(n=6, temperature=2.0, seed=9)")
    best = run(llm, "best_k(k=2, n=6, temperature=2.0, seed=9)")
    assert isinstance(best, list) and len(best) == 2
    ranked = sorted(samples, key=lambda r: -by_hand(tiny_gpt2_path, r))
    assert [r.prompt for r in best] == [r.prompt for r in ranked[:2]]
    assert [by_hand(tiny_gpt2_path, r) for r in best] == pytest.approx(
        [r.trace.logprob for r in best], abs=1e-3)
    for result in best:
        check_constraints(result)
    # k=1: a single result, not a list (as LMQL gives one output for one sequence)
    one = run(llm, "best_k(k=1, n=6, temperature=2.0, seed=9)")
    assert isinstance(one, lmql_nb.LMQLResult) and one.prompt == ranked[0].prompt


@pytest.mark.parametrize("how", ["decorator", "clause", "call"])
def test_the_decoder_is_chosen_the_lmql_ways(llm, how):
    source = PROGRAM.format(choices=CHOICES)
    if how == "clause":
        results = lmql_nb.run_sync("beam_sample(n=2, temperature=1.2, seed=3)\n" + source,
                                   model=llm, cache=False)
    elif how == "call":
        results = lmql_nb.run_sync(source, model=llm, cache=False, decoder="beam_sample", n=2,
                                   temperature=1.2, seed=3)
    else:
        query = lmql_nb.query(source, model=llm, cache=False, decoder="beam_sample", n=2,
                              temperature=1.2, seed=3, is_async=False)
        results = query()
    expected = run(llm, "beam_sample(n=2, temperature=1.2, seed=3)")
    assert [r.prompt for r in results] == [r.prompt for r in expected]


@pytest.mark.parametrize("clause, error, message", [
    ("beam_sample(n=0)", ValueError, "n must be an int >= 1, got 0"),
    ("var(b=0)", ValueError, "b must be an int >= 1, got 0"),
    ("best_k(k=0)", ValueError, "k must be an int >= 1, got 0"),
    ("best_k(k=3, n=2)", ValueError, r"best_k\(k=3, n=2\): k, the results kept, must be at "
     "most n"),
    ("best_k(budget=30)", TypeError, "best_k(...) got an unknown argument 'budget'; best_k "
     "takes k, n, temperature, top_k, top_p, seed"),
    ("var(q=1)", TypeError, r"unknown argument 'q'; var takes b, n, temperature"),
    ("beam_var(temperature=0.5)", ValueError, "temperature does not apply to "
     "decoder='beam_var', which takes n of the decoder options"),
    ("beam(b=2)", ValueError, "b does not apply to decoder='beam'.*b applies to decoder 'var'"),
    ("sample(k=2)", ValueError, "k does not apply to decoder='sample'.*applies to decoder "
     "'best_k'"),
])
def test_wrong_decoder_arguments_are_named_with_what_is_accepted(llm, clause, error, message):
    with pytest.raises(error, match=message if "(" not in message or "\\(" in message
                       else message.replace("(", r"\(").replace(")", r"\)")
                       .replace("...", r"\.\.\.")):
        run(llm, clause)


def test_decoder_names_are_stated_once(llm):
    assert options.QUERY_DECODERS == ("argmax", "sample", "beam", "beam_sample", "var",
                                      "beam_var", "best_k")
    with pytest.raises(ValueError, match="unknown decoder 'greedy'; accepted decoders are: "
                       "argmax, sample, beam, beam_sample, var, beam_var, best_k"):
        lmql_nb.run_sync('"x[A]"', decoder="greedy", model=llm)
    with pytest.raises(ValueError, match="decoder must be one of argmax, sample, beam, "
                       "beam_sample, got 'var'"):
        options.parse_generate_options(4, decoder="var")
    # a search over program states forks by re-running the program: no input() there
    with pytest.raises(ValueError, match="await input\\(\\) runs under argmax, sample or "
                       "best_k, not var"):
        lmql_nb.run_sync('"x[A]" where len(TOKENS(A)) < 2\nq = await input()', model=llm,
                         decoder="var", inputs=["hi"])


@pytest.mark.parametrize("official", [False, True])
def test_servers_refuse_beam_sample_by_name(official):
    from lmql_nb.backends.openai.dialect import Server, request_parameters

    server = Server("m", "http://127.0.0.1:1/v1", chat=False, official=official,
                    vllm_like=not official)
    with pytest.raises(ValueError, match="decoder='beam_sample' is not supported by "
                       "http://127.0.0.1:1/v1.*in-process models"):
        request_parameters(options.parse_generate_options(4, decoder="beam_sample", n=2),
                           server)


def test_a_variable_named_like_a_decoder_argument_warns_only_under_that_decoder(llm):
    """LMQL's rule: a keyword naming a variable the program reads is the variable. `k` and
    `b` are options of best_k and var only, so elsewhere such a variable warns of nothing."""
    import warnings

    program = '"{{k}}[X]" where len(TOKENS(X)) < 2'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run(llm, "argmax", program, k="Hi").prompt.startswith("Hi")
        assert run(llm, "", program, k="Hi", decoder="sample", seed=1).prompt.startswith("Hi")
    with pytest.warns(QueryArgumentWarning, match="k= was taken as the program's variable k"):
        run(llm, "", program, k="Hi", decoder="best_k", n=8, seed=1)
