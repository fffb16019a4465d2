"""The llama.cpp backend on the embedded GGUF, as it is (quantised weights).

Expected numbers come from `llama_cpp.Llama` used by hand on the same file: its own
evaluation of the same tokens (`logits_all=True`) and its own greedy completion.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import lmql_nb

from installed import dev_package

dev_package("llama_cpp")

pytestmark = pytest.mark.timeout(300)

MODEL = "llama.cpp:gemma-3-270m"
PROMPT = "The capital of France is"
CITIES = [" Paris", " London", " Berlin"]


@pytest.fixture(scope="module")
def llm():
    return lmql_nb.model(MODEL)


@pytest.fixture(scope="module")
def by_hand():
    """llama.cpp's own Python API on the same file, with every position's logits and
    flash attention, as the backend runs it."""
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    return llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=1024, logits_all=True,
                           n_threads=1, n_threads_batch=1, flash_attn=True, type_k=0, type_v=0, verbose=False)


def chunked_logprobs(by_hand, prompt_ids: list[int], value_ids: list[int]) -> np.ndarray:
    """log-softmax of llama.cpp's logits at every position, the prompt evaluated first and
    the value after it, as scoring does. (On this quantised model llama.cpp's numbers
    depend on how tokens are split into decode calls: one call over prompt and value
    differs by up to 0.16 for a 7-token value.)"""
    by_hand.reset()
    by_hand.eval(prompt_ids)
    by_hand.eval(value_ids)
    ids = prompt_ids + value_ids
    logits = np.array(by_hand.scores[:len(ids)], dtype=np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def value_score(by_hand, prompt: str, value: str) -> float:
    """`value`'s log-probability after `prompt` by llama.cpp's own API: the prompt
    evaluated, then the value's tokens of the joint tokenisation."""
    prompt_ids = by_hand.tokenize(prompt.encode())
    joint = by_hand.tokenize((prompt + value).encode())
    assert joint[:len(prompt_ids)] == prompt_ids
    logprobs = chunked_logprobs(by_hand, prompt_ids, joint[len(prompt_ids):])
    return float(sum(logprobs[i - 1, joint[i]] for i in range(len(prompt_ids), len(joint))))


def stepwise_logprobs(by_hand, prompt_ids: list[int], generated: list[int]) -> np.ndarray:
    """log-softmax of llama.cpp's logits before each generated token, evaluating one
    token at a time as a generation loop does (a batched evaluation of the same tokens
    differs in the second decimal on this quantised model: other kernels)."""
    by_hand.reset()
    by_hand.eval(prompt_ids)
    rows = [np.array(by_hand.scores[by_hand.n_tokens - 1], dtype=np.float64)]
    for token in generated[:-1]:
        by_hand.eval([token])
        rows.append(np.array(by_hand.scores[by_hand.n_tokens - 1], dtype=np.float64))
    logits = np.stack(rows)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_scores_equal_llama_cpp_evaluation_and_paris_wins(llm, by_hand):
    result = llm.score_sync(PROMPT, CITIES, cache=False)
    assert result.argmax() == " Paris"
    values = CITIES + [" Paris, the city of light", " a city on the Seine"]
    result = llm.score_sync(PROMPT, values, cache=False)
    for city, score in zip(values, result.scores()):
        assert score == pytest.approx(value_score(by_hand, PROMPT, city), abs=1e-3)


def test_greedy_equals_llama_cpp_completion(llm, by_hand):
    ours = llm.generate_sync(PROMPT, max_tokens=24, cache=False)
    by_hand.reset()
    theirs = by_hand.create_completion(PROMPT, max_tokens=24, temperature=0.0,
                                       repeat_penalty=1.0)["choices"][0]["text"]
    assert ours == theirs
    assert "France" in ours


def test_token_logprobs_and_alternatives_equal_llama_cpp_logits(llm, by_hand):
    generation = llm.generate_sync(PROMPT, max_tokens=6, return_details=True,
                                   top_logprobs=5, cache=False)
    prompt_ids = llm.get_tokenizer().encode_prompt(PROMPT)
    logprobs = stepwise_logprobs(by_hand, prompt_ids, [t.token_id for t in generation.tokens])
    for token, row in zip(generation.tokens, logprobs):
        assert token.logprob == pytest.approx(row[token.token_id], abs=1e-3)
        assert token.rank == 1  # greedy
        best = np.argsort(-row)[:5]
        assert [a.token_id for a in token.top] == best.tolist()
        np.testing.assert_allclose([a.logprob for a in token.top], row[best], atol=1e-3)
    assert "".join(t.text for t in generation.tokens) == generation.text


def test_beam_sample_draws_within_top_k_with_true_logprobs(llm, by_hand):
    """decoder="beam_sample" on llama.cpp: every token is one of llama.cpp's own 3 most
    likely at its place (top_k=3), with its log-probability; the beams are distinct."""
    draws = llm.generate_sync(PROMPT, max_tokens=4, decoder="beam_sample", n=3, top_k=3,
                              temperature=1.5, seed=5, return_details=True, cache=False)
    assert 1 < len(draws) <= 3 and len({d.text for d in draws}) == len(draws)
    prompt_ids = llm.get_tokenizer().encode_prompt(PROMPT)
    for draw in draws:
        logprobs = stepwise_logprobs(by_hand, prompt_ids, [t.token_id for t in draw.tokens])
        for row, token in zip(logprobs, draw.tokens):
            assert token.token_id in np.argsort(-row)[:3].tolist()
            assert token.logprob == pytest.approx(float(row[token.token_id]), abs=1e-3)


def test_beam_returns_distinct_best_first_sequences_with_true_logprobs(llm, by_hand):
    beams = llm.generate_sync(PROMPT, max_tokens=5, decoder="beam", n=3,
                              return_details=True, cache=False)
    assert len(beams) == 3 and len({b.text for b in beams}) == 3
    prompt_ids = llm.get_tokenizer().encode_prompt(PROMPT)
    totals = []
    for beam in beams:
        logprobs = stepwise_logprobs(by_hand, prompt_ids, [t.token_id for t in beam.tokens])
        expected = [row[t.token_id] for row, t in zip(logprobs, beam.tokens)]
        np.testing.assert_allclose([t.logprob for t in beam.tokens], expected, atol=1e-3)
        totals.append(sum(expected) / len(expected))
    assert totals == sorted(totals, reverse=True)
    greedy = llm.generate_sync(PROMPT, max_tokens=5, return_details=True, cache=False)
    assert totals[0] >= sum(t.logprob for t in greedy.tokens) / 5 - 1e-3


def test_sampling_is_seeded_and_top_k_1_is_greedy(llm):
    first = llm.generate_sync(PROMPT, max_tokens=8, decoder="sample", n=3, seed=7, cache=False)
    again = llm.generate_sync(PROMPT, max_tokens=8, decoder="sample", n=3, seed=7, cache=False)
    assert first == again and len(set(first)) > 1
    assert llm.generate_sync(PROMPT, max_tokens=8, decoder="sample", top_k=1, seed=3,
                             cache=False) == llm.generate_sync(PROMPT, max_tokens=8, cache=False)


def test_constraints_apply_to_llama_cpp_logits(llm):
    number = llm.generate_sync("Q: What is 7 times 6?\nA:", max_tokens=6, regex=r" [0-9]{2}",
                               cache=False)
    assert re.fullmatch(r" [0-9]{2}", number)
    colour = llm.generate_sync("My favourite colour is", choices=[" red", " green", " blue"],
                               return_details=True, top_logprobs=5, cache=False)
    assert colour.text in (" red", " green", " blue")
    # alternatives the constraint ruled out are still shown, marked as blocked
    assert any(a.blocked for a in colour.tokens[0].top)
    stopped = llm.generate_sync(PROMPT, max_tokens=30, stops_at=".", cache=False)
    assert stopped.endswith(".") and stopped.count(".") == 1


def test_concurrent_calls_equal_one_by_one(llm, monkeypatch):
    """Concurrent calls (different prompts and lengths, one prompt three times, a sampled
    call with three rows) give exactly what each gives alone. A call's rows share each
    llama_decode; calls never do (llama.cpp rounds differently for different row counts,
    enough to change a greedy text: see `llama_model`)."""
    from lmql_nb.backends.llamacpp.model import LlamaModel

    calls = [(p, dict(max_tokens=8)) for p in
             ["Once upon a time", "The best way to learn", PROMPT, PROMPT, PROMPT]]
    calls.append((PROMPT, dict(max_tokens=8, decoder="sample", n=3, seed=4)))
    alone = [llm.generate_sync(p, cache=False, return_details=True, **o) for p, o in calls]
    rows_per_call = []
    original = LlamaModel._decode_chunk

    def counting(self, tokens, wanted):
        rows_per_call.append(len({sequence for _, _, sequence, _ in tokens}))
        return original(self, tokens, wanted)

    monkeypatch.setattr(LlamaModel, "_decode_chunk", counting)

    async def together():
        return await asyncio.gather(*(llm.generate(p, cache=False, return_details=True, **o)
                                      for p, o in calls))

    assert asyncio.run(together()) == alone  # texts, tokens and every log-probability
    assert max(rows_per_call) == 3  # the sampled call's rows, together; no call mixed


def test_a_known_prompt_is_not_computed_again(llm, monkeypatch):
    from lmql_nb.backends.llamacpp.model import LlamaModel

    decoded = []
    original = LlamaModel._decode_chunk
    monkeypatch.setattr(LlamaModel, "_decode_chunk",
                        lambda self, tokens, wanted: (decoded.extend(tokens),
                                                      original(self, tokens, wanted))[1])
    prompt = "Here is a list of the largest cities in Europe, ordered by population:"
    prompt_tokens = len(llm.get_tokenizer().encode_prompt(prompt))
    first = llm.score_sync(prompt, [" London", " Paris"])
    assert len(decoded) >= prompt_tokens
    decoded.clear()
    second = llm.score_sync(prompt, [" Madrid", " Paris", " Rome"])
    value_tokens = sum(len(llm.get_tokenizer().encode(v)) for v in (" Madrid", " Paris", " Rome"))
    assert len(decoded) <= value_tokens  # the prompt came from the prefix cache
    assert second.scores()[1] == pytest.approx(first.scores()[1], abs=1e-4)


def test_results_do_not_depend_on_what_ran_before(llm):
    # a cached shorter prompt is not continued (that would split the prompt into other
    # decode calls and move its numbers: 0.14 here for " Paris"); only a cached state of
    # the whole prompt is used
    values = [" Paris", " London"]
    fresh = llm.score_sync(PROMPT, values, cache=False).scores().tolist()
    llm.generate_sync("", max_tokens=1)  # the start token alone is now cached
    assert llm.score_sync(PROMPT, values).scores().tolist() == fresh
    assert llm.score_sync(PROMPT, values, cache=False).scores().tolist() == fresh


def test_cancelling_frees_the_model_for_the_next_call(llm):
    model = llm.backend._model

    async def scenario():
        task = asyncio.ensure_future(llm.generate(PROMPT, max_tokens=2000, cache=False))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await asyncio.wait_for(llm.generate(PROMPT, max_tokens=3, cache=False), 60)

    assert asyncio.run(scenario())
    # every sequence is free again (the worker releases them just after answering)
    deadline = time.monotonic() + 10
    while (model._live or len(model._free) < model.sequences) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not model._live and len(model._free) == model.sequences
    # and no cells are left behind in llama.cpp's cache
    assert all(model.llama.llama_memory_seq_pos_max(model.memory, sequence) == -1
               for sequence in range(model.sequences))


def test_the_tokenizer_comes_from_the_gguf(llm, by_hand):
    tokenizer = llm.get_tokenizer()
    text = "Zürich, 日本語 and emoji 😀 <start_of_turn>"
    assert tokenizer.encode(text) == by_hand.tokenize(text.encode(), add_bos=False, special=True)
    assert tokenizer.encode_prompt(PROMPT) == by_hand.tokenize(PROMPT.encode())
    assert tokenizer.decode(tokenizer.encode("Zürich, 日本語 😀")) == "Zürich, 日本語 😀"
    assert {1, 106} <= tokenizer.eos_token_ids  # <eos> and <end_of_turn>
    assert tokenizer.vocab_size == by_hand.n_vocab()


def test_results_are_cached_under_the_gguf_identity(llm, monkeypatch):
    from lmql_nb.backends.llamacpp.model import LlamaModel

    prompt = "A cached question:"
    first = llm.generate_sync(prompt, max_tokens=4)
    monkeypatch.setattr(LlamaModel, "decode", lambda *a: pytest.fail("the model ran"))
    assert llm.generate_sync(prompt, max_tokens=4) == first
    assert llm.backend.identity().startswith("llama.cpp|")


def test_bad_ids_and_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="GGUF"):
        lmql_nb.model("llama.cpp:model.bin")
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        lmql_nb.model(f"llama.cpp:{tmp_path / 'missing.gguf'}")
    with pytest.raises(TypeError, match="accepted options are: .*n_ctx"):
        lmql_nb.model(MODEL, dtype="bfloat16")
    with pytest.raises(ValueError, match="parallel must be an int in \\[2, 256\\]"):
        lmql_nb.model(MODEL, parallel=1)
    with pytest.raises(ValueError, match="n=5 is more sequences"):
        lmql_nb.model(MODEL, parallel=4).generate_sync("x", decoder="sample", n=5)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(ValueError, match="could not load"):
        lmql_nb.model(f"llama.cpp:{broken}").generate_sync("x", max_tokens=1)


def test_llama_cpp_models_run_without_torch():
    # the fast CPU path must not need torch: every decoder, scoring and a constraint run
    # in a fresh process, which then has neither torch nor transformers imported
    code = """
import sys, lmql_nb
llm = lmql_nb.model("llama.cpp:gemma-3-270m")
text = llm.generate_sync("The capital of France is", max_tokens=4, cache=False,
                         return_details=True, top_logprobs=3).text
llm.generate_sync("Hi", max_tokens=3, decoder="beam", n=2, cache=False)
llm.generate_sync("Hi", max_tokens=3, decoder="sample", n=2, seed=1, top_p=0.9, cache=False)
year = llm.generate_sync("Year:", max_tokens=8, regex=" [0-9]{4}", cache=False)
best = llm.score_sync("The capital of France is", [" Paris", " London"]).argmax()
import re
print(repr(best), bool(re.fullmatch(" [0-9]{4}", year)),
      [name for name in ("torch", "transformers") if name in sys.modules])
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=240, check=True).stdout.strip().splitlines()[-1]
    assert output == "' Paris' True []"


def test_branch_continues_from_the_token_ids_as_llama_cpp_does(llm, by_hand):
    """A branch runs prompt + shared tokens + the chosen token as ids; llama.cpp's own
    greedy continuation of those ids must be the branch's."""
    original = llm.generate_sync(PROMPT, max_tokens=6, return_details=True, cache=False)
    alternative = original.tokens[1].top[1]
    branch = llm.branch_sync(original, 1, alternative, max_tokens=6)
    ids = (llm.get_tokenizer().encode_prompt(PROMPT)
           + [original.tokens[0].token_id, alternative.token_id])
    by_hand.reset()
    theirs = []
    for token in by_hand.generate(ids, temp=0.0, repeat_penalty=1.0, reset=True):
        if token == by_hand.token_eos() or len(theirs) == 5:
            break
        theirs.append(token)
    assert branch.tokens[0].token_id == alternative.token_id
    assert [t.token_id for t in branch.tokens[1:]] == theirs


def test_throughput_mode_batches_different_calls(llm, monkeypatch):
    """With throughput=True, concurrent calls share llama_decode calls (prompts, values
    and generation steps); their numbers move against the calls alone: by about 0.01
    for rows decoded in company, up to about 0.4 for prompts evaluated in one decode
    call with others (" Paris" -2.52 against -2.35 alone)."""
    from lmql_nb.backends.llamacpp.model import LlamaModel

    fast = lmql_nb.model(MODEL, throughput=True)
    prompts = ["The capital of France is", "Once upon a time, in a land",
               "The best way to learn a language is"]
    values = [CITIES, [" far", " there", " the kingdom of the north"], [" to", " practice"]]
    alone = [llm.score_sync(p, v, cache=False).scores() for p, v in zip(prompts, values)]
    texts_alone = [llm.generate_sync(p, max_tokens=6, cache=False) for p in prompts]
    fast.score_sync("warm", [" up"], cache=False)
    fast.backend._worker._batch_window = 0.3
    sequences_per_decode = []
    original = LlamaModel._decode_chunk

    def counting(self, tokens, wanted):
        sequences_per_decode.append(len({sequence for _, _, sequence, _ in tokens}))
        return original(self, tokens, wanted)

    monkeypatch.setattr(LlamaModel, "_decode_chunk", counting)

    async def together():
        scores = await asyncio.gather(*(fast.score(p, v, cache=False)
                                        for p, v in zip(prompts, values)))
        texts = await asyncio.gather(*(fast.generate(p, max_tokens=6, cache=False)
                                       for p in prompts))
        return scores, texts

    scores, texts = asyncio.run(together())
    assert max(sequences_per_decode) >= len(prompts)  # calls shared decode calls
    for got, expected in zip(scores, alone):
        np.testing.assert_allclose(got.scores(), expected, atol=0.5)
    assert scores[0].argmax() == " Paris"
    assert sum(a == b for a, b in zip(texts, texts_alone)) >= 2  # a near-tie may flip
    assert fast.backend.identity() != llm.backend.identity()
    with pytest.raises(TypeError, match="throughput must be True or False"):
        lmql_nb.model(MODEL, throughput="yes")


def test_score_many_rows_equal_the_calls_alone(llm):
    """Default mode: calls take turns, so every row is exactly the call alone."""
    prompts = [f"Fact {i}: the capital of France is" for i in range(6)]
    table = llm.score_many_sync(prompts, CITIES, cache=False, progress=False)
    for prompt, result in zip(prompts, table):
        assert result.scores().tolist() == llm.score_sync(prompt, CITIES,
                                                          cache=False).scores().tolist()
    assert list(table.to_pandas()["argmax"]) == [" Paris"] * 6


def test_flash_attention_is_an_option(llm):
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    plain = lmql_nb.model(MODEL, flash_attn=False)
    # the backend's key/value cache is llama.cpp's default (F16), which matters here: with
    # flash attention off an F32 cache moves " Paris" by 0.24
    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=1024, logits_all=True,
                              n_threads=1, n_threads_batch=1, flash_attn=False, verbose=False)
    scores = plain.score_sync(PROMPT, CITIES, cache=False).scores()
    for city, score in zip(CITIES, scores):
        assert score == pytest.approx(value_score(by_hand, PROMPT, city), abs=1e-3)
    flash = llm.score_sync(PROMPT, CITIES, cache=False).scores()  # the default: on
    assert np.abs(np.array(scores) - flash).max() > 1e-3  # a different computation
    assert plain.backend.identity() != llm.backend.identity()  # cached apart


@pytest.mark.parametrize("frequency, presence", [(1.5, 0.0), (0.0, 1.5), (0.8, 0.6)])
def test_frequency_and_presence_penalty_equal_llama_cpps_own_sampler(llm, by_hand, frequency,
                                                                      presence):
    """llama.cpp's penalties sampler applies OpenAI's formula over the tokens it generated
    (its last 64, more than this generation's): its greedy run with the same penalties
    must be the backend's."""
    ours = llm.generate_sync(PROMPT, max_tokens=24, return_details=True, cache=False,
                             frequency_penalty=frequency, presence_penalty=presence)
    ids = llm.get_tokenizer().encode_prompt(PROMPT)
    theirs: list[int] = []
    by_hand.reset()  # else generate() continues the prompt's start left by earlier tests
    for token in by_hand.generate(ids, temp=0.0, repeat_penalty=1.0, reset=True,
                                  frequency_penalty=frequency, presence_penalty=presence):
        if token == by_hand.token_eos() or len(theirs) == 24:
            break
        theirs.append(token)
    assert [t.token_id for t in ours.tokens] == theirs
    plain = llm.generate_sync(PROMPT, max_tokens=24, return_details=True, cache=False)
    assert [t.token_id for t in plain.tokens] != theirs  # the penalties changed the choice


def test_repetition_penalty_counts_the_prompt_as_transformers_does(llm, by_hand):
    """llama.cpp's own repeat_penalty sees only the tokens it generated; lmql_nb's follows
    transformers (the prompt counts too), so the expected ids come from a greedy loop by
    hand over llama.cpp's own logits (prompt evaluated first, then one token per call, as
    the backend decodes) with transformers' formula."""
    penalty = 1.5
    ours = llm.generate_sync(PROMPT, max_tokens=16, return_details=True, cache=False,
                             repetition_penalty=penalty)
    ids = llm.get_tokenizer().encode_prompt(PROMPT)
    by_hand.reset()
    by_hand.eval(ids)
    theirs: list[int] = []
    while len(theirs) < 16:
        logits = np.array(by_hand.scores[by_hand.n_tokens - 1], dtype=np.float32)
        seen = np.unique(ids + theirs)
        logits[seen] = np.where(logits[seen] < 0, logits[seen] * penalty,
                                logits[seen] / penalty)
        token = int(logits.argmax())
        if token == by_hand.token_eos():
            break
        theirs.append(token)
        by_hand.eval([token])
    assert [t.token_id for t in ours.tokens] == theirs
    plain = llm.generate_sync(PROMPT, max_tokens=16, return_details=True, cache=False)
    assert [t.token_id for t in plain.tokens] != theirs
    # the reported numbers stay the model's own: a penalised choice is not its best token
    assert any(t.rank != 1 for t in ours.tokens)
