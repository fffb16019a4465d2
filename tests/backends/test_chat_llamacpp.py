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


REPLIES = ["Paris.", "The capital of France is Paris.", "Berlin."]


def by_hand_reply_scores(model_path, prompt_text: str, replies: list[str]) -> list[float]:
    """Each reply's log-probability as the assistant's whole turn (its tokens, then
    `<end_of_turn>`) after `prompt_text`, by llama.cpp's own API: the prompt evaluated,
    then the reply, as scoring splits them (on this quantised model llama.cpp's numbers
    depend on how tokens are split into decode calls)."""
    import llama_cpp
    import numpy as np

    by_hand = llama_cpp.Llama(model_path=str(model_path), n_ctx=512, logits_all=True,
                              n_threads=1, n_threads_batch=1, flash_attn=True, type_k=0,
                              type_v=0, verbose=False)
    prompt = by_hand.tokenize(prompt_text.encode(), add_bos=False, special=True)
    end = by_hand.tokenize(b"<end_of_turn>", add_bos=False, special=True)
    scores = []
    for reply in replies:
        value = by_hand.tokenize(reply.encode(), add_bos=False, special=False) + end
        by_hand.reset()
        by_hand.eval(prompt)
        by_hand.eval(value)
        logits = np.array(by_hand.scores[:len(prompt) + len(value)], dtype=np.float64)
        shifted = logits - logits.max(-1, keepdims=True)
        table = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        scores.append(float(sum(table[len(prompt) + i - 1, t] for i, t in enumerate(value))))
    return scores


def test_llama_cpp_scores_replies_as_the_assistants_turn():
    from lmql_nb.backends.embedded import embedded_gguf

    llm = lmql_nb.model("llama.cpp:gemma-3-270m")
    result = llm.score_sync(CHAT, REPLIES, cache=False)
    expected = by_hand_reply_scores(embedded_gguf(), "<bos>" + TURNS, REPLIES)
    assert result.scores().tolist() == pytest.approx(expected, abs=1e-3)
    assert result.argmax() == "The capital of France is Paris."


#: a template of the GGUF's own, unlike Gemma's built-in one (a system turn of its own)
GGUF_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n"
                 "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
                 "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


@pytest.fixture(scope="module")
def gguf_with_template(tmp_path_factory):
    """The embedded GGUF with `tokenizer.chat_template` added, written by gguf's own
    `gguf_new_metadata` (as a converter writes a chat model's template)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    from lmql_nb.backends.embedded import embedded_gguf

    path = tmp_path_factory.mktemp("gguf-template") / "gemma-with-template.gguf"
    reader = gguf.GGUFReader(str(embedded_gguf()))
    writer = gguf.GGUFWriter(str(path), arch=reader.get_field("general.architecture").contents(),
                             endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(
        gguf.GGUFValueType.STRING, GGUF_TEMPLATE)}, [])
    return path


def test_a_ggufs_own_chat_template_renders_the_conversation(gguf_with_template):
    """The template comes from the GGUF's `tokenizer.chat_template`: the ids equal
    llama-cpp-python's own Jinja chat formatter on the file's metadata, tokenised by
    llama.cpp, and replies are scored after that rendering."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    chat = [{"role": "system", "content": "You answer in one short sentence."}, *CHAT]
    by_hand = llama_cpp.Llama(model_path=str(gguf_with_template), n_ctx=256, vocab_only=True,
                              verbose=False)
    template = by_hand.metadata["tokenizer.chat_template"]
    assert template == GGUF_TEMPLATE

    def spelling(token: int) -> str:
        return by_hand.detokenize([token], special=True).decode()

    text = Jinja2ChatFormatter(template, eos_token=spelling(by_hand.token_eos()),
                               bos_token=spelling(by_hand.token_bos()))(messages=chat).prompt
    assert "<start_of_turn>system\n" in text  # not Gemma's built-in format
    llm = lmql_nb.model(f"llama.cpp:{gguf_with_template}")
    llm.backend.load()
    assert llm.backend.chat_format().prompt_ids(chat) == by_hand.tokenize(
        text.encode(), add_bos=False, special=True)
    result = llm.score_sync(chat, REPLIES, cache=False)
    assert result.scores().tolist() == pytest.approx(
        by_hand_reply_scores(gguf_with_template, text, REPLIES), abs=1e-3)


def test_llama_cpp_chat_turn_ends_at_end_of_turn():
    """The embedded base model never picks `<end_of_turn>` greedily, so the turn is ended
    by choosing it in `branch`: llama.cpp's generation stops there (finish reason
    "stop", the marker, by llama.cpp's own tokenizer, as `end_token`, no text); another
    token at that place continues the turn."""
    import llama_cpp

    from lmql_nb.backends.embedded import embedded_gguf

    llm = lmql_nb.model("llama.cpp:gemma-3-270m")
    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=256, vocab_only=True,
                              verbose=False)
    [end] = by_hand.tokenize(b"<end_of_turn>", add_bos=False, special=True)
    generation = llm.generate_sync(CHAT, max_tokens=3, return_details=True, cache=False)
    assert end not in [t.token_id for t in generation.tokens]
    ended = llm.branch_sync(generation, 2, end, max_tokens=4, cache=False)
    assert ended.finish_reason == "stop" and len(ended.tokens) == 0
    assert ended.end_token.token_id == end and ended.text == ""
    assert list(ended.prefix_ids) == [t.token_id for t in generation.tokens[:2]]
    other = llm.branch_sync(generation, 2, generation.tokens[2].token_id, max_tokens=3,
                            cache=False)
    assert other.finish_reason == "length" and len(other.tokens) == 3
