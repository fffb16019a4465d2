"""Property-based tests (hypothesis): tokenisation round trips and scoring alignment."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lmql_nb
from lmql_nb.tokenization.tokenizer import IncrementalDecoder, split_continuation

import reference

# valid Unicode text: any code point but surrogates (which UTF-8 cannot encode)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tokenizers(tiny_gpt2_path, tiny_llama_path):
    return [lmql_nb.model(f"local:{p}").get_tokenizer() for p in (tiny_gpt2_path, tiny_llama_path)]


@SETTINGS
@given(text=TEXT)
def test_byte_level_round_trip(tokenizers, text):
    gpt2 = tokenizers[0]
    assert gpt2.decode(gpt2.encode(text)) == text


@SETTINGS
@given(context=TEXT, text=TEXT)
def test_incremental_pieces_add_up_to_the_decoded_text(tokenizers, context, text):
    """Pieces emitted token by token equal the text decoded at once (both tokenizers),
    and no piece carries half a character."""
    for tokenizer in tokenizers:
        context_ids = tokenizer.encode_prompt(context)
        ids = tokenizer.encode_prompt(context + text)[len(context_ids):]
        decoder = IncrementalDecoder(tokenizer, context_ids)
        pieces = [decoder.add(i) for i in ids]
        before = tokenizer.decode(context_ids)
        after = tokenizer.decode(context_ids + ids)
        if tokenizer is tokenizers[0]:  # byte-level: bytes join, so the check below runs
            assert after.startswith(before), (before, after)
        if after.startswith(before):
            assert "".join(pieces) == after[len(before):].rstrip("\ufffd")
        assert all("\ufffd" not in piece or "\ufffd" in after for piece in pieces)


@SETTINGS
@given(prompt=TEXT, value=TEXT.filter(bool))
def test_split_continuation_partitions_the_joint_tokens(tokenizers, prompt, value):
    for tokenizer in tokenizers:
        context, value_ids = split_continuation(tokenizer, prompt, value)
        joint = tokenizer.encode_prompt(prompt + value)
        assert value_ids, "every non-empty value has at least one token"
        if context + value_ids == joint:  # the context is where prompt and joint agree
            assert tokenizer.encode_prompt(prompt)[:len(context)] == context
        else:  # an empty prompt and no BOS: the start token is the context
            assert (context, value_ids) == ([tokenizer.start_token_id], joint)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=TEXT, value=TEXT.filter(bool))
@example(prompt="0" * 14 + "\x80" * 11 + "\U00010000" * 7,  # 129 tokens: past the context
         value="0" * 14 + "\x80" * 11 + "\U00010000" * 7)
def test_scores_of_any_text_equal_a_forward_pass(tiny_llama_path, prompt, value):
    llm = lmql_nb.model(f"local:{tiny_llama_path}")
    model, tokenizer = reference.load(tiny_llama_path)
    if len(reference.prompt_ids(tokenizer, prompt + value)) > model.config.max_position_embeddings:
        # byte-fallback characters take several tokens each: past the context, a clear error
        with pytest.raises(ValueError, match="more than the model's context"):
            llm.score_sync(prompt, [value], cache=False)
        return
    result = llm.score_sync(prompt, [value], cache=False)
    expected = reference.continuation_logprob(tiny_llama_path, prompt, value)
    # the reference sums its float32 log-probabilities in float32: about 1e-7 of the total
    # per token, so long random texts need a relative bound beside the absolute one
    assert result.scores()[0] == pytest.approx(expected, abs=1e-4, rel=1e-6)
    assert len(result.token_scores[0]) == len(result.token_ids[0]) > 0
