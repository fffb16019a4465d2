"""The server's answers in vLLM's shapes, checked against transformers' own forward pass:
prompt tokens with their top-k alternatives (echo + logprobs=k, prompt_logprobs=k),
the generated end-of-sequence token in logprobs and usage, /tokenizer_info."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny_model(tiny_gpt2_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_gpt2_path).eval()


@pytest.fixture(scope="module")
def forward(tiny_model):
    """Log-softmax rows of transformers' forward pass over token ids (not lmql_nb)."""
    import torch

    def rows(ids: list[int]):
        with torch.no_grad():
            return tiny_model(torch.tensor([ids])).logits[0].float().log_softmax(-1)

    return rows


def _post(server, path: str, body: dict) -> dict:
    response = httpx.post(f"{server.base_url}{path}", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.status_code == 200, response.text
    return response.json()


IDS = [17, 250, 31, 99, 140, 7, 64]


def test_echo_with_logprobs_k_gives_each_prompt_token_and_its_top_k(gpt2_server, forward):
    k = 3
    body = _post(gpt2_server, "/completions", {
        "model": "tiny-gpt2", "prompt": [IDS], "max_tokens": 1, "temperature": 0,
        "logprobs": k, "echo": True, "return_tokens_as_token_ids": True})
    logprobs = body["choices"][0]["logprobs"]
    rows = forward(IDS)
    assert logprobs["tokens"][:len(IDS)] == [f"token_id:{t}" for t in IDS]
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    for position in range(1, len(IDS)):
        row = rows[position - 1]
        token = IDS[position]
        assert logprobs["token_logprobs"][position] == pytest.approx(float(row[token]), abs=1e-5)
        top = logprobs["top_logprobs"][position]
        best = row.topk(k)
        expected = {f"token_id:{token}": float(row[token])}
        expected.update({f"token_id:{int(i)}": float(v) for v, i in zip(best.values, best.indices)})
        assert list(top)[0] == f"token_id:{token}"  # the token itself first, as vLLM
        assert top.keys() == expected.keys()
        assert all(top[key] == pytest.approx(value, abs=1e-5) for key, value in expected.items())
    # text offsets advance by each token's label, as vLLM's do
    labels = logprobs["tokens"]
    assert logprobs["text_offset"] == [sum(len(t) for t in labels[:i]) for i in range(len(labels))]


def test_a_two_token_prompt_has_its_alternatives_too(gpt2_server, forward):
    """The second token of a prompt is scored from the first alone (a one-token
    suffix): it too has its top-k."""
    body = _post(gpt2_server, "/completions", {
        "model": "tiny-gpt2", "prompt": [IDS[:2]], "max_tokens": 0, "logprobs": 2,
        "echo": True, "return_tokens_as_token_ids": True})
    top = body["choices"][0]["logprobs"]["top_logprobs"][1]
    row = forward(IDS[:2])[0]
    assert set(top) == {f"token_id:{i}" for i in [IDS[1], *row.topk(2).indices.tolist()]}


def test_prompt_logprobs_k_gives_ranks_and_alternatives(gpt2_server, forward):
    k = 2
    body = _post(gpt2_server, "/completions", {
        "model": "tiny-gpt2", "prompt": [IDS], "max_tokens": 1, "temperature": 0,
        "prompt_logprobs": k})
    entries = body["choices"][0]["prompt_logprobs"]
    rows = forward(IDS)
    assert entries[0] is None and len(entries) == len(IDS)
    for position in range(1, len(IDS)):
        row, token = rows[position - 1], IDS[position]
        entry = entries[position]
        assert entry[str(token)]["logprob"] == pytest.approx(float(row[token]), abs=1e-5)
        assert entry[str(token)]["rank"] == int((row > row[token]).sum()) + 1
        for rank, index in enumerate(row.topk(k).indices.tolist(), 1):
            assert str(index) in entry
            if index != token:
                assert entry[str(index)]["rank"] == rank


def _prompt_before_eos(model, eos: int) -> list[int]:
    """A token-id prompt after which the tiny model's most likely token is EOS (found
    with batched forward passes over one- and two-token prompts)."""
    import torch

    vocab = model.config.vocab_size
    firsts = torch.arange(1, vocab)[:, None]
    for second in (None, *range(1, 60)):
        batch = firsts if second is None else torch.cat(
            [firsts, torch.full_like(firsts, second)], 1)
        with torch.no_grad():
            best = model(batch).logits[:, -1].argmax(-1)
        hits = (best == eos).nonzero()
        if len(hits):
            return batch[int(hits[0, 0])].tolist()
    raise AssertionError("no prompt makes EOS the most likely next token")


@pytest.fixture(scope="module")
def eos_model(tiny_gpt2_path, tmp_path_factory):
    """The tiny GPT-2 with its end-of-sequence token made likely (its embedding row,
    tied to the output layer, scaled): EOS is then the most likely next token after
    about one prompt token in fifty."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("eos-gpt2") / "model"
    shutil.copytree(tiny_gpt2_path, folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        model.transformer.wte.weight[model.config.eos_token_id] *= 6
    model.save_pretrained(folder)
    return folder, model


def test_a_generated_end_of_sequence_token_is_reported(eos_model, server_process):
    """vLLM counts and reports the end-of-sequence token it generates: lm-eval sums
    token_logprobs[ctxlen:-1] and would drop a real token without it."""
    import torch
    from transformers import AutoTokenizer

    folder, model = eos_model
    tokenizer = AutoTokenizer.from_pretrained(folder)
    eos = tokenizer.eos_token_id
    ids = _prompt_before_eos(model, eos)
    with torch.no_grad():
        expected = float(model(torch.tensor([ids])).logits[0, -1].log_softmax(-1)[eos])
    gpt2_server = server_process(f"local:{folder}", "tiny-gpt2",
                                 extra=("--trust-request-chat-template",))
    try:
        _check_end_token(gpt2_server, tokenizer, ids, expected)
    finally:
        gpt2_server.stop()


def _check_end_token(gpt2_server, tokenizer, ids: list[int], expected: float) -> None:
    body = _post(gpt2_server, "/completions", {
        "model": "tiny-gpt2", "prompt": [ids], "max_tokens": 1, "temperature": 0,
        "logprobs": 1, "echo": True})
    choice = body["choices"][0]
    assert body["usage"]["completion_tokens"] == 1
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"]["tokens"][-1] == tokenizer.eos_token
    assert choice["logprobs"]["token_logprobs"][-1] == pytest.approx(expected, abs=1e-5)
    assert len(choice["logprobs"]["tokens"]) == len(ids) + 1
    assert choice["text"] == tokenizer.decode(ids)  # the text has no end-of-sequence token

    plain = _post(gpt2_server, "/completions", {
        "model": "tiny-gpt2", "prompt": [ids], "max_tokens": 5, "temperature": 0, "logprobs": 0})
    assert plain["usage"]["completion_tokens"] == 1 and plain["choices"][0]["text"] == ""
    assert plain["choices"][0]["logprobs"]["tokens"] == [tokenizer.eos_token]

    stream = httpx.post(f"{gpt2_server.base_url}/completions", timeout=60, json={
        "model": "tiny-gpt2", "prompt": [ids], "max_tokens": 5, "temperature": 0, "logprobs": 0,
        "stream": True, "stream_options": {"include_usage": True}},
        headers={"Authorization": f"Bearer {gpt2_server.api_key}"})
    import json

    events = [json.loads(line[6:]) for line in stream.text.splitlines()
              if line.startswith("data: {")]
    final = events[-2]["choices"][0]
    assert final["finish_reason"] == "stop" and final["logprobs"]["tokens"] == [tokenizer.eos_token]
    assert events[-1]["usage"]["completion_tokens"] == 1

    text = tokenizer.decode(ids)
    chat = _post(gpt2_server, "/chat/completions", {
        "model": "tiny-gpt2", "messages": [{"role": "user", "content": text}], "max_tokens": 5,
        "temperature": 0, "logprobs": True, "chat_template": "{{ messages[0]['content'] }}"})
    if tokenizer.encode(text) == ids:  # the chat renders the same ids
        assert chat["usage"]["completion_tokens"] == 1
        assert chat["choices"][0]["logprobs"]["content"][-1]["token"] == tokenizer.eos_token


def test_tokenizer_info_and_tokenize_without_model(gpt2_server, tiny_gpt2_path):
    """What lm-eval's remote tokenizer asks: /tokenizer_info, /tokenize and /detokenize
    without a model name."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_path)
    headers = {"Authorization": f"Bearer {gpt2_server.api_key}"}
    info = httpx.get(f"{gpt2_server.root}/tokenizer_info", headers=headers, timeout=30).json()
    assert info["eos_token"] == tokenizer.eos_token
    assert info["tokenizer_class"] == type(tokenizer).__name__
    assert "name_or_path" not in info and not any(k.endswith("_file") for k in info)
    tokens = httpx.post(f"{gpt2_server.root}/tokenize", headers=headers, timeout=30,
                        json={"prompt": tokenizer.eos_token + "Paris",
                              "add_special_tokens": False}).json()["tokens"]
    assert tokens == tokenizer.encode(tokenizer.eos_token + "Paris", add_special_tokens=False)
    text = httpx.post(f"{gpt2_server.root}/detokenize", headers=headers, timeout=30,
                      json={"tokens": tokens[1:]}).json()["prompt"]
    assert text == "Paris"
    assert httpx.get(f"{gpt2_server.root}/tokenizer_info", timeout=30).status_code == 401
