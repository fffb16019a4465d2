"""`LLM.branch`: continuing a generation from another token, on token ids.

The expected continuations come from transformers' own greedy `generate` run on the
token ids prompt + tokens 0..i-1 + the chosen token, and from the engine's token-id
generation on exactly that prefix (for sampling with a seed and for constraints).
"""

from __future__ import annotations

import pytest

import lmql_nb
from lmql_nb.core import aio
from lmql_nb.core.options import parse_generate_options

import reference

PROMPT = "Once upon a time"


def details(llm, prompt=PROMPT, **options):
    return llm.generate_sync(prompt, return_details=True, cache=False,
                             **{"max_tokens": 8, "top_logprobs": 5, **options})


def generate_on_ids(llm, prompt, ids, max_tokens, **options):
    """The engine's `generate` after exactly these response token ids."""
    parsed = parse_generate_options(max_tokens, return_details=True, top_logprobs=5, **options)
    backend = llm.backend
    prompt_ids = backend.tokenizer.encode_prompt(prompt)
    generations = aio.run_sync(backend.generate_ids, prompt_ids, prompt, parsed, prefix_ids=ids)
    return generations if parsed.n > 1 else generations[0]


def test_branch_argmax_equals_transformers_greedy_on_the_token_prefix(tiny_path):
    llm = lmql_nb.model(f"local:{tiny_path}")
    original = details(llm)
    position = 3
    alternative = original.tokens[position].top[1]  # the runner-up, not what was chosen
    branch = llm.branch_sync(original, position, alternative, max_tokens=6)

    shared = [t.token_id for t in original.tokens[:position]]
    assert branch.prefix_ids == tuple(shared)
    first = branch.tokens[0]
    assert first.token_id == alternative.token_id
    # the chosen token is drawn from the same distribution as the original one
    assert first.logprob == pytest.approx(alternative.logprob, abs=1e-5)
    assert first.rank == 2
    assert [a.token_id for a in first.top] == [a.token_id for a in original.tokens[position].top]

    _, tokenizer = reference.load(tiny_path)
    ids = reference.prompt_ids(tokenizer, PROMPT) + shared + [alternative.token_id]
    assert [t.token_id for t in branch.tokens[1:]] == reference.greedy_ids(tiny_path, ids, 5)
    logprobs = reference.token_logprobs(tiny_path, ids + [t.token_id for t in branch.tokens[1:]])
    for i, token in enumerate(branch.tokens):
        assert token.logprob == pytest.approx(float(logprobs[len(ids) - 2 + i, token.token_id]),
                                              abs=1e-4)
    assert branch.prompt == PROMPT


def test_a_branch_of_a_branch_continues_from_all_shared_ids(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    original = details(llm)
    first = llm.branch_sync(original, 2, original.tokens[2].top[1], max_tokens=6)
    second = llm.branch_sync(first, 2, first.tokens[2].top[2].token_id, max_tokens=4)
    shared = ([t.token_id for t in original.tokens[:2]] + [t.token_id for t in first.tokens[:2]])
    assert second.prefix_ids == tuple(shared)
    _, tokenizer = reference.load(tiny_gpt2_path)
    ids = reference.prompt_ids(tokenizer, PROMPT) + shared + [second.tokens[0].token_id]
    assert [t.token_id for t in second.tokens[1:]] == reference.greedy_ids(tiny_gpt2_path, ids, 3)


def test_a_seeded_sampled_branch_equals_sampling_on_the_token_prefix(tiny_path):
    llm = lmql_nb.model(f"local:{tiny_path}")
    original = details(llm)
    chosen = original.tokens[1].top[2]
    options = dict(decoder="sample", seed=11, temperature=1.3)
    branch = llm.branch_sync(original, 1, chosen, max_tokens=9, **options)
    ids = [original.tokens[0].token_id, chosen.token_id]
    expected = generate_on_ids(llm, PROMPT, ids, 8, **options)
    assert branch.tokens[0].token_id == chosen.token_id
    assert [t.token_id for t in branch.tokens[1:]] == [t.token_id for t in expected.tokens]
    # the same numbers up to float noise (the chosen token runs as a step, not a prefill)
    assert [t.logprob for t in branch.tokens[1:]] == \
        pytest.approx([t.logprob for t in expected.tokens], abs=1e-5)
    assert branch.text == branch.tokens[0].text + expected.text


def test_a_constrained_branch_completes_the_other_choice(tiny_path):
    """Under `choices`, branching onto the first token of the choice not taken must give
    exactly that choice: the constraint sees the chosen token as the response's start."""
    from lmql_nb.tokenization.tokenizer import split_continuation

    llm = lmql_nb.model(f"local:{tiny_path}")
    prompt = "The capital of France is"
    choices = [" Paris. The capital of Germany", " Berlin with a quiet river"]
    original = details(llm, prompt, choices=choices, max_tokens=30)
    assert original.text in choices
    other = choices[1 - choices.index(original.text)]
    _, value_ids = split_continuation(llm.get_tokenizer(), prompt, other)
    branch = llm.branch_sync(original, 0, value_ids[0], max_tokens=30, choices=choices)
    assert branch.text == other
    assert branch.finish_reason == "stop"
    expected = generate_on_ids(llm, prompt, value_ids[:1], 29, choices=choices)
    assert branch.tokens[0].text + expected.text == other
    assert [t.token_id for t in branch.tokens[1:]] == [t.token_id for t in expected.tokens]


def test_a_token_that_retokenises_differently_still_continues_from_its_id(tiny_gpt2_path):
    """Find an alternative whose text, appended to the text so far, tokenises into other
    ids (it merges with its neighbour): the branch must still run the chosen id."""
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    tokenizer = llm.get_tokenizer()
    original = details(llm, "The capital of", max_tokens=10, top_logprobs=20)
    prompt_ids = tokenizer.encode_prompt("The capital of")
    found = None
    for position, token in enumerate(original.tokens):
        shared = [t.token_id for t in original.tokens[:position]]
        text = "The capital of" + "".join(t.text for t in original.tokens[:position])
        for alternative in token.top:
            exact = prompt_ids + shared + [alternative.token_id]
            if tokenizer.encode_prompt(text + alternative.text) != exact:
                found = position, alternative, exact
                break
        if found:
            break
    assert found is not None, "no alternative re-tokenises differently; pick another prompt"
    position, alternative, exact = found
    branch = llm.branch_sync(original, position, alternative, max_tokens=5)
    assert list(branch.prefix_ids) + [branch.tokens[0].token_id] == exact[len(prompt_ids):]
    assert [t.token_id for t in branch.tokens[1:]] == \
        reference.greedy_ids(tiny_gpt2_path, exact, 4)


def test_branch_rejects_bad_input_before_running(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    original = details(llm, max_tokens=3)
    with pytest.raises(TypeError, match="Generation"):
        llm.branch_sync("text", 0, 1)
    with pytest.raises(ValueError, match=r"position must be in \[0, 3\)"):
        llm.branch_sync(original, 3, 1)
    with pytest.raises(TypeError, match="position must be an int"):
        llm.branch_sync(original, True, 1)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llm.branch_sync(original, 0, 10**7)
    with pytest.raises(ValueError, match="not one"):
        llm.branch_sync(original, 0, "Once upon a time there was")
    with pytest.raises(TypeError, match="token must be"):
        llm.branch_sync(original, 0, 1.5)
    with pytest.raises(ValueError, match="max_tokens=0"):
        llm.branch_sync(original, 0, 1, max_tokens=0)
    with pytest.raises(TypeError, match="unknown option"):
        llm.branch_sync(original, 0, 1, colour="red")


@pytest.mark.gemma
def test_branch_on_the_embedded_model_equals_transformers_greedy(gemma):
    from pathlib import Path

    original = gemma.generate_sync("The capital of France is", max_tokens=6,
                                   return_details=True, cache=False)
    alternative = original.tokens[1].top[1]
    branch = gemma.branch_sync(original, 1, alternative, max_tokens=6)
    folder = Path(gemma.backend.location())
    _, tokenizer = reference.load(folder)
    ids = (reference.prompt_ids(tokenizer, "The capital of France is")
           + [original.tokens[0].token_id, alternative.token_id])
    assert branch.tokens[0].token_id == alternative.token_id
    assert [t.token_id for t in branch.tokens[1:]] == reference.greedy_ids(folder, ids, 5)


def test_a_beam_branch_starts_every_beam_with_the_chosen_token(tiny_gpt2_path):
    llm = lmql_nb.model(f"local:{tiny_gpt2_path}")
    original = details(llm)
    chosen = original.tokens[1].top[1]
    beams = llm.branch_sync(original, 1, chosen, max_tokens=5, decoder="beam", n=2)
    expected = generate_on_ids(llm, PROMPT, [original.tokens[0].token_id, chosen.token_id], 4,
                               decoder="beam", n=2)
    assert all(b.tokens[0].token_id == chosen.token_id for b in beams)
    # equal lengths (no end-of-sequence here): the same beams, in the same order
    assert [[t.token_id for t in b.tokens[1:]] for b in beams] == \
        [[t.token_id for t in g.tokens] for g in expected]
