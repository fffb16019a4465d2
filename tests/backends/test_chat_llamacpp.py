"""Chat on the embedded GGUF through llama.cpp: Gemma's turn format tokenised by
llama.cpp's own tokenizer, and generation ending at `<end_of_turn>`."""

from __future__ import annotations

import pytest

import lmql_nb

from installed import dev_package

dev_package("llama_cpp")

pytestmark = pytest.mark.timeout(300)

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
TURNS = "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"


def test_llama_cpp_renders_gemmas_turns_and_stops_at_the_end_of_turn():
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    llm = lmql_nb.model("llama.cpp:gemma-3-270m")
    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=256, vocab_only=True,
                              verbose=False)
    expected = by_hand.tokenize(TURNS.encode(), add_bos=True, special=True)
    llm.backend.load()
    assert llm.backend.chat_format().prompt_ids(CHAT) == expected
    end = by_hand.tokenize(b"<end_of_turn>", add_bos=False, special=True)
    assert len(end) == 1 and end[0] in llm.get_tokenizer().eos_token_ids
    generation = llm.generate_sync(CHAT, max_tokens=48, return_details=True, cache=False)
    assert generation.finish_reason in ("stop", "length")
    assert all(t.token_id != end[0] for t in generation.tokens)
