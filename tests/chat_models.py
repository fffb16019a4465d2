"""A tiny chat model the chat tests build: the tiny Llama with ChatML's turn tokens and
template, saved as transformers saves a chat model (its template in the folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = ("{% for message in messages %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
          "{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

#: what the tests ask, and the replies they score
MESSAGES = [{"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "The capital of France is"}]

#: a `%%lmql` chat with two user turns asked by `await input()` (the kernel and the browser
#: tests answer it through the trace view's input box), and what the user types
CHAT_PROGRAM = '''argmax
    "{:system} You answer in one word."
    "{:user} {await input()}"
    "{:assistant} [A1]" where len(TOKENS(A1)) < 5
    "{:user} {await input('And now?')}"
    "{:assistant} [A2]" where len(TOKENS(A2)) < 5
'''
CHAT_SAID = ["hi there", "<b>Germany</b> & Berlin"]  # replies the tiny model gives: text


def _root_conftest():
    """tests/conftest.py as a module (`import conftest` may find a subfolder's)."""
    import importlib.util
    import sys

    name = "_lmql_nb_tests_root_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(
            "conftest.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def build_chat_model(folder: Path) -> Path:
    """The tiny Llama with `<|im_start|>`/`<|im_end|>` added and CHATML as its template.

    The end-of-turn token's output row is made a multiple of the row of the token greedy
    decoding picks fourth, so that greedy decoding reaches `<|im_end|>` after two to
    seven tokens (random weights alone would almost never end a turn).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_model = _root_conftest().build_tiny_model

    build_tiny_model(folder, "llama", seed=3)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = torch.tensor([tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True,
                                                      tokenize=True, return_dict=False)])
    head = model.get_output_embeddings().weight
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=4, pad_token_id=0)
        fourth = head[int(out[0, -1])].clone()
        for factor in (1.01, 1.03, 1.1, 1.3, 1.6, 2.0):  # the first that ends after 2+
            head[end] = fourth * factor
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=8, pad_token_id=0)[0, ids.shape[1]:].tolist()
            if end in out and out.index(end) >= 2:
                break
        else:
            raise AssertionError("no end-of-turn row ends the turn after two tokens or more")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def chat_path(tmp_path_factory) -> Path:
    """The tiny chat model's folder (import this fixture into a test module)."""
    return build_chat_model(tmp_path_factory.mktemp("tiny-chat"))


# transformers used by hand on the tiny chat model: what the chat tests compare with

def hf_prompt(path, messages, template=None) -> list[int]:
    """transformers' `apply_chat_template(messages, add_generation_prompt=True)` ids."""
    import reference

    _, tokenizer = reference.load(path)
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                              tokenize=True, return_dict=False,
                                              chat_template=template))


def hf_greedy(path, ids: list[int], max_new: int) -> list[int]:
    """Greedy decoding by hand, one forward pass per token, up to `<|im_end|>`."""
    import torch

    import reference

    model, tokenizer = reference.load(path)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = list(ids)
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(max_new):
            token = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            if token == end:
                break
            new.append(token)
            ids.append(token)
    return new


def hf_reply_logprob(path, messages, reply: str) -> float:
    """log P(reply, then <|im_end|> | the conversation, assistant turn opened)."""
    import reference

    _, tokenizer = reference.load(path)
    prompt = hf_prompt(path, messages)
    value = tokenizer.encode(reply, add_special_tokens=False) + [
        tokenizer.convert_tokens_to_ids("<|im_end|>")]
    logprobs = reference.token_logprobs(path, prompt + value)
    return float(sum(logprobs[len(prompt) + i - 1, t] for i, t in enumerate(value)))
