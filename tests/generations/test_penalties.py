"""repetition_penalty, frequency_penalty and presence_penalty on tiny models: the tokens
chosen equal transformers' own `generate` (repetition_penalty) and a hand-written loop
over its forward pass with OpenAI's formula (frequency/presence), the log-probabilities
stay the model's own."""

from __future__ import annotations

import pytest

import lmql_nb

import reference

PROMPTS = ["The capital of", "Once upon a time"]
TOKENS = 16


def ids_of(generation) -> list[int]:
    """The generated ids, an end-of-sequence that ended the generation included."""
    return [t.token_id for t in generation.tokens] + \
        ([generation.end_token.token_id] if generation.end_token is not None else [])


def local(path):
    return lmql_nb.model(f"local:{path}")


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("penalty", [1.3, 2.0, 0.7])
def test_repetition_penalty_equals_transformers_generate(tiny_path, prompt, penalty):
    ours = local(tiny_path).generate_sync(prompt, max_tokens=TOKENS, repetition_penalty=penalty,
                                          return_details=True, cache=False)
    expected = reference.generated_ids(tiny_path, prompt, TOKENS, repetition_penalty=penalty)
    assert ids_of(ours) == expected
    # the penalty changes what is chosen (else this test would prove nothing)
    assert expected != reference.generated_ids(tiny_path, prompt, TOKENS)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("frequency, presence", [(1.5, 0.0), (0.0, 1.5), (0.8, 0.6),
                                                 (-0.5, 0.0)])
def test_frequency_and_presence_penalty_equal_openais_formula(tiny_path, prompt, frequency,
                                                              presence):
    ours = local(tiny_path).generate_sync(prompt, max_tokens=TOKENS,
                                          frequency_penalty=frequency,
                                          presence_penalty=presence, return_details=True,
                                          cache=False)
    expected = reference.openai_penalised_greedy_ids(tiny_path, prompt, TOKENS, frequency,
                                                     presence)
    assert ids_of(ours) == expected
    if frequency >= 0:
        assert expected != reference.generated_ids(tiny_path, prompt, TOKENS)


def test_logprobs_stay_the_models_own(tiny_llama_path):
    prompt = "Once upon a time"
    generation = local(tiny_llama_path).generate_sync(
        prompt, max_tokens=TOKENS, repetition_penalty=1.5, frequency_penalty=0.5,
        return_details=True, top_logprobs=3, cache=False)
    _, tokenizer = reference.load(tiny_llama_path)
    ids = reference.prompt_ids(tokenizer, prompt)
    rows = reference.token_logprobs(tiny_llama_path, ids + ids_of(generation))
    for i, token in enumerate(generation.tokens):
        row = rows[len(ids) + i - 1]
        assert token.logprob == pytest.approx(float(row[token.token_id]), abs=1e-4)
        assert [a.token_id for a in token.top] == row.topk(3).indices.tolist()
    # the penalties made it choose tokens the model itself ranks below the best
    assert any(token.rank != 1 for token in generation.tokens)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_beam_search_with_repetition_penalty_equals_transformers(tiny_path, prompt):
    ours = local(tiny_path).generate_sync(prompt, max_tokens=8, decoder="beam", n=3,
                                          repetition_penalty=1.8, cache=False)
    expected = reference.beams(tiny_path, prompt, 8, 3, repetition_penalty=1.8)
    assert ours == expected
    assert expected != reference.beams(tiny_path, prompt, 8, 3)


def test_sampling_with_penalties_is_reproducible_and_penalised(tiny_gpt2_path):
    llm = local(tiny_gpt2_path)
    options = dict(max_tokens=TOKENS, decoder="sample", n=4, temperature=0.3, seed=5,
                   cache=False, return_details=True)
    plain = llm.generate_sync("The capital of", **options)
    penalised = llm.generate_sync("The capital of", presence_penalty=2.0, **options)
    assert penalised == llm.generate_sync("The capital of", presence_penalty=2.0, **options)

    def repeats(generations):
        return sum(len(g.tokens) - len({t.token_id for t in g.tokens}) for g in generations)

    assert repeats(penalised) < repeats(plain)


def test_neutral_values_change_nothing(tiny_gpt2_path):
    llm = local(tiny_gpt2_path)
    plain = llm.generate_sync("Once upon a time", max_tokens=TOKENS, cache=False)
    assert llm.generate_sync("Once upon a time", max_tokens=TOKENS, repetition_penalty=1,
                             frequency_penalty=0, presence_penalty=0.0, cache=False) == plain


@pytest.mark.parametrize("options, message", [
    (dict(repetition_penalty=-1.3), "repetition_penalty must be a number > 0, got -1.3"),
    (dict(repetition_penalty=0), "repetition_penalty must be a number > 0, got 0"),
    (dict(repetition_penalty="1.3"), "repetition_penalty must be a number > 0, got str '1.3'"),
    (dict(frequency_penalty=2.5), "frequency_penalty must be a number in [-2, 2], got 2.5"),
    (dict(presence_penalty=None), "presence_penalty must be a number in [-2, 2], got NoneType"),
    (dict(presence_penalty=float("nan")), "presence_penalty must be a number in [-2, 2]"),
])
def test_bad_values_name_the_option_and_what_is_accepted(tiny_gpt2_path, options, message):
    with pytest.raises((TypeError, ValueError)) as error:
        local(tiny_gpt2_path).generate_sync("Hi", max_tokens=2, **options)
    assert message in str(error.value)


# query programs: the decoder clause and run()'s keywords give each hole the penalties

QUERY = '"The capital of[X]" where len(TOKENS(X)) < 17'


def hole(llm, clause: str, **kwargs) -> str:
    result = lmql_nb.run_sync(f"{clause}\n{QUERY}", model=llm, cache=False, **kwargs)
    return result.variables["X"]


@pytest.mark.parametrize("clause, keywords, expected", [
    ("argmax(repetition_penalty=1.3)", {},
     lambda path: reference.generated_ids(path, "The capital of", TOKENS,
                                          repetition_penalty=1.3)),
    # top_k=1: sampling chooses the best penalised token, whatever the seed draws
    ("sample(top_k=1, seed=4, repetition_penalty=2.0)", {},
     lambda path: reference.generated_ids(path, "The capital of", TOKENS,
                                          repetition_penalty=2.0)),
    ("argmax(frequency_penalty=1.5)", {},
     lambda path: reference.openai_penalised_greedy_ids(path, "The capital of", TOKENS, 1.5)),
    ("argmax", dict(presence_penalty=1.5),
     lambda path: reference.openai_penalised_greedy_ids(path, "The capital of", TOKENS, 0.0,
                                                        1.5)),
    ("argmax", dict(repetition_penalty=1.3, frequency_penalty=0.5), None),
])
def test_query_programs_take_the_penalties(tiny_path, clause, keywords, expected):
    llm = local(tiny_path)
    value = hole(llm, clause, **keywords)
    options = {**dict(kw.split("=") for kw in clause[clause.find("(") + 1:-1].split(", ")
                      if "=" in kw and "penalty" in kw), **keywords}
    options = {k: float(v) for k, v in options.items()}
    generated = llm.generate_sync("The capital of", max_tokens=TOKENS, return_details=True,
                                  cache=False, **options)
    assert value == generated.text
    assert value != llm.generate_sync("The capital of", max_tokens=TOKENS, cache=False)
    if expected is not None:
        assert ids_of(generated) == expected(tiny_path)


def test_query_programs_refuse_bad_penalties_by_name(tiny_gpt2_path):
    llm = local(tiny_gpt2_path)
    with pytest.raises(ValueError, match=r"repetition_penalty must be a number > 0, got -1"):
        hole(llm, "argmax(repetition_penalty=-1)")
    with pytest.raises(TypeError, match=r"frequency_penalty must be a number in \[-2, 2\], "
                                        r"got str 'a'"):
        hole(llm, "argmax", frequency_penalty="a")


def test_query_beam_var_takes_the_penalties(tiny_gpt2_path):
    """A program-level search passes them to its holes' beam searches: with one hole,
    its results are the hole's beam search's."""
    llm = local(tiny_gpt2_path)
    results = lmql_nb.run_sync(f"beam_var(n=2, repetition_penalty=1.8)\n{QUERY}", model=llm,
                               cache=False)
    beams = llm.generate_sync("The capital of", max_tokens=TOKENS, decoder="beam", n=2,
                              repetition_penalty=1.8, cache=False)
    assert [r.variables["X"] for r in results] == beams
    assert beams != llm.generate_sync("The capital of", max_tokens=TOKENS, decoder="beam",
                                      n=2, cache=False)


def test_the_magics_flags_give_the_penalties(tiny_gpt2_path):
    """%%lmql_generate and %%lmql take --repetition-penalty, --frequency-penalty and
    --presence-penalty (a real IPython shell): the same text as the keywords; a bad value
    is a usage error naming the option."""
    from IPython.core.interactiveshell import InteractiveShell

    from IPython.core.error import UsageError

    model_id = f"local:{tiny_gpt2_path}"
    expected = local(tiny_gpt2_path).generate_sync("The capital of", max_tokens=TOKENS,
                                                   cache=False, repetition_penalty=1.3,
                                                   presence_penalty=0.5)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "lmql_nb")
        flags = "--repetition-penalty 1.3 --presence-penalty 0.5"
        shell.run_cell_magic("lmql_generate", f"-m {model_id} --max-tokens {TOKENS} {flags} "
                             "-o generated --format text", "The capital of")
        assert shell.user_ns["generated"] == expected
        shell.run_cell_magic("lmql", f"-m {model_id} {flags} -o queried", QUERY)
        assert shell.user_ns["queried"].variables["X"] == expected
        with pytest.raises(UsageError, match="repetition_penalty must be a number > 0"):
            shell.run_cell_magic("lmql_generate", f"-m {model_id} --repetition-penalty -1",
                                 "Hi")
    finally:
        InteractiveShell.clear_instance()


def test_the_result_cache_keeps_penalised_results_apart(tiny_gpt2_path):
    """A penalty changes the result, so it is part of the result cache's key: a cached
    unpenalised result is not returned for a penalised call, nor the other way round."""
    llm = local(tiny_gpt2_path)
    plain = llm.generate_sync("The capital of", max_tokens=TOKENS)
    penalised = llm.generate_sync("The capital of", max_tokens=TOKENS, repetition_penalty=1.3)
    assert penalised != plain
    assert penalised == llm.generate_sync("The capital of", max_tokens=TOKENS, cache=False,
                                          repetition_penalty=1.3)
    assert llm.generate_sync("The capital of", max_tokens=TOKENS, frequency_penalty=1.5) \
        not in (plain, penalised)


def test_a_branch_counts_its_own_tokens_as_output(tiny_gpt2_path):
    """A branch runs on the token ids (prompt, the shared tokens, the chosen one): the
    penalties count the chosen token and what follows as output, not the shared start,
    as a server given those ids as its prompt does."""
    llm = local(tiny_gpt2_path)
    original = llm.generate_sync("The capital of", max_tokens=8, return_details=True,
                                 cache=False)
    chosen = original.tokens[2].top[1]
    branch = llm.branch_sync(original, 2, chosen, max_tokens=12, frequency_penalty=1.5,
                             presence_penalty=0.5)
    _, tokenizer = reference.load(tiny_gpt2_path)
    context = reference.prompt_ids(tokenizer, "The capital of") + \
        [t.token_id for t in original.tokens[:2]]
    expected = reference.openai_penalised_continuation(tiny_gpt2_path, context,
                                                       [chosen.token_id], 11, 1.5, 0.5)
    assert ids_of(branch) == [chosen.token_id] + expected
    assert ids_of(branch) != ids_of(llm.branch_sync(original, 2, chosen, max_tokens=12))
