"""A query program on llama.cpp continues one key/value state from hole to hole (nested
queries and tool loops too).

Counts come from llama.cpp's own counters (`llama_perf_context`: tokens it evaluated);
expected numbers from `llama_cpp.Llama` used by hand on the same file: the same text fed
in the same pieces (as `Llama.generate` continues its previous tokens), and the whole
text evaluated afresh.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import lmql_nb
from lmql_nb.core import aio
from lmql_nb.core.continuation import continuing
from lmql_nb.tokenization.tokenizer import common_prefix_length

from installed import dev_package

dev_package("llama_cpp")

pytestmark = pytest.mark.timeout(300)

MODEL = "llama.cpp:gemma-3-270m"
PROGRAM = '''argmax
    "Q: {question}\\n"
    "A: Let's think step by step.\\n"
    "First,[STEP1]" where len(TOKENS(STEP1)) < 7
    "\\nThen,[STEP2]" where len(TOKENS(STEP2)) < 7
    "\\nSo,[STEP3]" where len(TOKENS(STEP3)) < 7
'''
QUESTION = "Anna has 123 apples and buys 3 more. How many apples does she have now?"
FIRST = f"Q: {QUESTION}\nA: Let's think step by step.\nFirst,"


@pytest.fixture(scope="module")
def llm():
    return lmql_nb.model(MODEL)


@pytest.fixture(autouse=True)
def no_result_cache(monkeypatch):
    """Every call computes (a result from the result cache evaluates nothing); the
    engine's prefix caches stay on."""
    from lmql_nb.generations.result_cache import results

    monkeypatch.setattr(results, "enabled", False)


@pytest.fixture(scope="module")
def by_hand():
    """llama.cpp's own Python API on the same file, as test_llamacpp_backend.py has it."""
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    return llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=1024, logits_all=True,
                           n_threads=1, n_threads_batch=1, flash_attn=True, type_k=0,
                           type_v=0, verbose=False)


def evaluated(llm) -> int:
    """Tokens llama.cpp evaluated since the last reset (its own counters: tokens of
    multi-token decodes and single-token decodes)."""
    model = llm.backend._model
    data = model.llama.llama_perf_context(model.context)
    return data.n_p_eval + data.n_eval


def no_cached_prompts(llm) -> None:
    """The model loaded, with no prompt state from earlier tests in its prefix cache."""
    llm.generate_sync("warm", max_tokens=1, cache=False)
    llm.backend._model.prefixes.clear()


def reset_count(llm) -> None:
    model = llm.backend._model
    model.llama.llama_perf_context_reset(model.context)


def log_softmax(row) -> np.ndarray:
    row = np.asarray(row, dtype=np.float64)
    shifted = row - row.max()
    return shifted - np.log(np.exp(shifted).sum())


def test_a_three_hole_query_evaluates_each_token_once(llm):
    no_cached_prompts(llm)
    tokenizer = llm.get_tokenizer()
    reset_count(llm)
    result = lmql_nb.run_sync(PROGRAM, question=QUESTION, model=llm, cache=False)
    rereading = evaluated(llm)  # cache=False: no prefix cache, each hole reads it all
    reset_count(llm)
    first = lmql_nb.run_sync(PROGRAM, question=QUESTION, model=llm)
    continued = evaluated(llm)
    text = tokenizer.encode_prompt(first.prompt)
    # every token of the final text once, but the last one chosen (never fed back); a
    # hole's end and the text after it may tokenise differently: then a token or two again
    assert len(text) - 1 <= continued <= len(text) + 2

    def prompts(text: str) -> list[list[int]]:
        """The holes' prompts in a run's final text."""
        return [tokenizer.encode_prompt(text[:text.index(marker) + len(marker)])
                for marker in ("First,", "\nThen,", "\nSo,")]

    assert rereading >= sum(map(len, prompts(result.prompt))) > continued + 40
    # a second run continues nothing of the first's: only the first prompt, evaluated
    # whole before, comes from the prefix cache; the results are the same
    reset_count(llm)
    second = lmql_nb.run_sync(PROGRAM, question=QUESTION, model=llm)
    assert evaluated(llm) == continued - len(prompts(first.prompt)[0])
    assert second.prompt == first.prompt
    assert result.prompt.startswith(FIRST)


def run_three(llm) -> tuple[list[str], list]:
    """Three generate calls in one continuation block, each prompt the one before with
    its completion and new text."""
    async def three():
        prompts, generations, prompt = [], [], FIRST
        with continuing():
            for text in ["\nThen,", "\nSo,", ""]:
                prompts.append(prompt)
                generation = await llm.generate(prompt, max_tokens=6, return_details=True,
                                                top_logprobs=5)
                generations.append(generation)
                prompt += generation.text + text
        return prompts, generations

    return aio.run_sync(three)


def test_continued_numbers_are_llama_cpps_for_the_same_pieces(llm, by_hand):
    tokenizer = llm.get_tokenizer()
    prompts, generations = run_three(llm)
    by_hand.reset()
    fed: list[int] = []
    for prompt, generation in zip(prompts, generations):
        ids = tokenizer.encode_prompt(prompt)
        # as Llama.generate continues: cut back to the shared start, evaluate the rest
        kept = common_prefix_length(ids, fed)
        by_hand.n_tokens = kept
        by_hand._ctx.kv_cache_seq_rm(-1, kept, -1)
        by_hand.eval(ids[kept:])
        fed = list(ids)
        rows = [log_softmax(by_hand.scores[by_hand.n_tokens - 1])]
        for token in generation.tokens[:-1]:  # generated tokens one at a time
            by_hand.eval([token.token_id])
            fed.append(token.token_id)
            rows.append(log_softmax(by_hand.scores[by_hand.n_tokens - 1]))
        for token, row in zip(generation.tokens, rows):
            assert token.logprob == pytest.approx(row[token.token_id], abs=1e-3)
            best = np.argsort(-row)[:5]
            assert [a.token_id for a in token.top] == best.tolist()
    # against the whole text evaluated afresh: llama.cpp's split rounding on this
    # quantised model (measured up to 0.15 in a top-5 log-probability), the same choice;
    # a state continued at a wrong position or with a missing cell misses by whole units
    for prompt, generation in zip(prompts, generations):
        by_hand.reset()
        by_hand.eval(tokenizer.encode_prompt(prompt))
        fresh = log_softmax(by_hand.scores[by_hand.n_tokens - 1])
        first = generation.tokens[0]
        assert first.token_id == int(fresh.argmax())
        np.testing.assert_allclose([a.logprob for a in first.top],
                                   fresh[[a.token_id for a in first.top]], atol=0.3)


def test_calls_outside_a_block_never_see_its_states(llm, by_hand):
    tokenizer = llm.get_tokenizer()
    prompts, _ = run_three(llm)
    # the last prompt was continued inside the block; outside, it is evaluated whole
    alone = llm.generate_sync(prompts[-1], max_tokens=1, return_details=True, top_logprobs=5)
    by_hand.reset()
    by_hand.eval(tokenizer.encode_prompt(prompts[-1]))
    fresh = log_softmax(by_hand.scores[by_hand.n_tokens - 1])
    top = alone.tokens[0].top
    np.testing.assert_allclose([a.logprob for a in top], fresh[[a.token_id for a in top]],
                               atol=1e-3)


TOOL_LOOP = '''
    "Q: {question}\\nLet's compute it step by step.\\n"
    for i in range(3):
        "Step {i + 1}:[EXPR]" where STOPS_AT(EXPR, "=") and len(TOKENS(EXPR)) < 7
        " {calc(EXPR)}\\n"
    "Answer:[ANSWER]" where len(TOKENS(ANSWER)) < 5
    return ANSWER
'''
THINK = '''
    "A: Let's think step by step.\\n[REASONING]" where len(TOKENS(REASONING)) < 6
    "So the answer is[ANSWER]" where len(TOKENS(ANSWER)) < 6
    return ANSWER.strip()
'''
NESTED = '''
    "Q: {question}\\n"
    "Answer: [FIRST: think]\\n"
    "Q: And what is twice that?\\n"
    "Answer: [SECOND: think]\\n"
    "Final answer:[FINAL]" where len(TOKENS(FINAL)) < 6
    return FINAL
'''


def calc(expression: str) -> str:
    """A tool: the expression's digits and operators, evaluated, or "?"."""
    import re

    try:
        return str(eval(re.sub(r"[^0-9+\-*/().]", "", expression), {"__builtins__": {}}))
    except Exception:
        return "?"


def run_counted(llm, program: str, cache: bool = True, **names) -> tuple[str, int]:
    """The program's final text, and how many tokens llama.cpp evaluated for it."""
    query = lmql_nb.query(textwrap.dedent(program), is_async=False)
    reset_count(llm)
    outcomes = aio.run_sync(query.outcomes, question=QUESTION, model=llm, cache=cache, **names)
    return outcomes[0].result.prompt, evaluated(llm)


def test_a_tool_loop_evaluates_each_token_once(llm):
    no_cached_prompts(llm)
    text, continued = run_counted(llm, TOOL_LOOP, calc=calc)
    length = len(llm.get_tokenizer().encode_prompt(text))
    # a tool's text may join the token before it differently: a token again per call
    assert length - 1 <= continued <= length + 3
    _, rereading = run_counted(llm, TOOL_LOOP, cache=False, calc=calc)
    assert rereading > 2 * continued


def test_a_nested_query_continues_the_outer_prompt(llm):
    no_cached_prompts(llm)
    think = lmql_nb.query(textwrap.dedent(THINK), is_async=False)
    text, continued = run_counted(llm, NESTED, think=think)
    # the final text, and each inner query's instructions and answer, hidden once it
    # returned (at most the hole budgets), and the outer text after a hidden part again
    tokenizer = llm.get_tokenizer()
    hidden = len(tokenizer.encode("A: Let's think step by step.\nSo the answer is")) + 10
    assert continued <= len(tokenizer.encode_prompt(text)) + 2 * hidden + 20
    _, rereading = run_counted(llm, NESTED, cache=False, think=think)
    assert rereading > 1.8 * continued


def whole_then_stepwise(by_hand, ids: list[int], tokens) -> list[np.ndarray]:
    """llama.cpp by hand on a fresh state: `ids` evaluated whole, then `tokens` (a
    generation's) fed one at a time; the log-probabilities each token was chosen from."""
    by_hand.reset()
    by_hand.eval(ids)
    rows = [log_softmax(by_hand.scores[by_hand.n_tokens - 1])]
    for token in tokens[:-1]:
        by_hand.eval([token.token_id])
        rows.append(log_softmax(by_hand.scores[by_hand.n_tokens - 1]))
    return rows


def differs(generation, rows: list[np.ndarray]) -> float:
    """The largest gap between a generation's top log-probabilities and `rows`'."""
    return max(abs(a.logprob - float(row[a.token_id]))
               for token, row in zip(generation.tokens, rows) for a in token.top)


def test_a_plain_call_never_gets_a_continued_result_from_the_result_cache(
        llm, by_hand, monkeypatch):
    from lmql_nb.generations.result_cache import results

    monkeypatch.setattr(results, "enabled", True)  # on here: it is what is tested
    calls: list[tuple[str, tuple, dict]] = []
    generate = llm.generate

    async def recorded(prompt, *args, **kwargs):
        calls.append((prompt, args, kwargs))
        return await generate(prompt, *args, **kwargs)

    question = "Ben has 45 pears and eats 5 of them. How many pears are left?"
    monkeypatch.setattr(llm, "generate", recorded)
    first = lmql_nb.run_sync(PROGRAM, question=question, model=llm)
    reset_count(llm)
    again = lmql_nb.run_sync(PROGRAM, question=question, model=llm)
    monkeypatch.undo()
    monkeypatch.setattr(results, "enabled", True)
    # a query run again still gets its holes from the result cache: nothing evaluated
    # (llama.cpp reads its two counters as at least 1 each)
    assert evaluated(llm) == 2 and again.prompt == first.prompt
    tokenizer = llm.get_tokenizer()
    continued = calls[:3]  # the first run's holes
    assert [prompt.endswith(marker) for (prompt, _, _), marker
            in zip(continued, ("First,", "\nThen,", "\nSo,"))] == [True] * 3
    gaps = []
    for prompt, args, kwargs in continued:
        # the same call outside the run: the same prompt and options, so the same
        # result-cache key but for the run's continuation
        plain = llm.generate_sync(prompt, *args, **kwargs)
        fresh = whole_then_stepwise(by_hand, tokenizer.encode_prompt(prompt), plain.tokens)
        assert differs(plain, fresh) < 1e-3
        assert plain.text == llm.generate_sync(prompt, *args, **dict(kwargs, cache=False)).text
        in_run = aio.run_sync(_in_block, llm, prompt, args, kwargs)
        gaps.append(differs(in_run, fresh))
    # the run's continued holes got other numbers (llama.cpp's split rounding), so the
    # plain calls above would have failed had they been given the run's results
    assert max(gaps) > 1e-3


async def _in_block(llm, prompt, args, kwargs):
    """The run's own result for the call, from the result cache, as a run sees it."""
    with continuing():
        return await llm.generate(prompt, *args, **kwargs)


def test_a_plain_score_never_gets_a_continued_score_from_the_result_cache(llm, monkeypatch):
    from lmql_nb.generations.result_cache import results

    monkeypatch.setattr(results, "enabled", True)
    first = FIRST.replace("123 apples", "77 plums").replace("apples", "plums")
    values = [" we", " the number of plums"]

    async def in_block():
        with continuing():  # the score continues the state the generation left
            completion = await llm.generate(first, max_tokens=6)
            prompt = first + completion + "\nThen,"
            return prompt, await llm.score(prompt, values)

    prompt, continued = aio.run_sync(in_block)
    plain = llm.score_sync(prompt, values)
    fresh = llm.score_sync(prompt, values, cache=False)  # computed now, whole
    for a, b in zip(plain.token_scores, fresh.token_scores):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # the continued scores were other numbers: handed to the plain call, they would fail
    assert max(np.abs(a - b).max() for a, b in zip(continued.token_scores,
                                                   fresh.token_scores)) > 1e-3


def test_a_saved_token_costs_what_the_budget_counts(llm):
    """The budget's bytes per token are llama.cpp's own: a saved state grows by them."""
    no_cached_prompts(llm)
    model = llm.backend._model
    sizes = []
    for length in (10, 40):
        sequence = model.take()
        try:
            model.decode([(5, p, sequence, p == length - 1) for p in range(length)])
            sizes.append(model.llama.llama_state_seq_get_size(model.context, sequence))
        finally:
            model.release(sequence)
    assert (sizes[1] - sizes[0]) / 30 == model.token_bytes
    # room for at least a full context of this model (a quarter of the available memory
    # is far more on any machine that runs these tests)
    assert model.continued.max_size >= model.context_length * model.token_bytes


def test_a_run_keeps_no_state_of_an_ended_run(llm):
    run_three(llm)
    run_three(llm)
    assert len({key[0] for key in llm.backend._model.continued._entries}) == 1


def test_a_state_too_large_to_keep_is_read_again_and_said_once(by_hand, monkeypatch, caplog):
    import logging

    from lmql_nb.backends.llamacpp import model as llama_model
    from lmql_nb.backends.registry import create_backend

    monkeypatch.setattr(llama_model, "CONTINUED_CONTEXTS", 20 / 1024)  # room for 20 tokens
    small = lmql_nb.LLM(MODEL, create_backend(MODEL, n_ctx=1024))  # a new instance
    no_cached_prompts(small)
    assert small.backend._model.continued.max_size == 20 * small.backend._model.token_bytes
    results: list = []
    generate = small.generate

    async def recorded(prompt, *args, **kwargs):
        results.append((prompt, await generate(prompt, *args, **kwargs)))
        return results[-1][1]

    monkeypatch.setattr(small, "generate", recorded)
    with caplog.at_level(logging.INFO, logger=llama_model.__name__):
        reset_count(small)
        first = lmql_nb.run_sync(PROGRAM, question=QUESTION, model=small)
        fallback = evaluated(small)
        lmql_nb.run_sync(PROGRAM, question=QUESTION.replace("123", "456"), model=small)
    # every state (each over 30 tokens) was too large: each hole read its prompt whole,
    # as with the prefix caches off
    _, rereading = run_counted(small, PROGRAM, cache=False)
    assert fallback == rereading
    said = [r for r in caplog.records if "is not kept" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    # and the numbers are those of each hole's prompt evaluated whole
    tokenizer = small.get_tokenizer()
    assert len(results) == 9 and results[2][0] + results[2][1].text == first.prompt
    for prompt, generation in results[:3]:
        fresh = whole_then_stepwise(by_hand, tokenizer.encode_prompt(prompt), generation.tokens)
        assert differs(generation, fresh) < 1e-3
