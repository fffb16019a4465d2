"""Stock lm-evaluation-harness against the real server, compared per item with its own
`hf` backend on the same saved weights (an independent implementation of every number).

The tasks are local (`dataset_path: json`, offline): multiple choice with non-ASCII
choices and a continuation after which the model's most likely token is
end-of-sequence (lm-eval sums `token_logprobs[ctxlen:-1]`, so a dropped EOS entry
scores the wrong tokens), a greedy continuation (lm-eval's `is_greedy` reads
`top_logprobs`), rolling log-likelihoods, and greedy generation, through
`local-completions` (with add_bos_token off and on, with lm-eval's own and with its
remote tokenizer: /tokenizer_info, /tokenize) and `local-chat-completions`. A tokenizer
that adds BOS (the tiny Llama's) is used because lm-eval's `local-completions` cannot
add one where the tokenizer adds none (GPT-2's), while its `hf` backend can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from installed import dev_package

dev_package("lm_eval")

pytestmark = pytest.mark.timeout(600)

# as Llama's, the template writes BOS: a server tokenises a rendered chat without adding
# special tokens (vLLM's default), lm-eval's hf backend adds none to a text that has one
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")
CONTEXTS = ["The capital of France is", "Once upon a time there was a small", "日本の首都は",
            "Numbers: 0 1 2", "def f(x):\n    return", '{"name": "Ada", "age":']
WORDS = [" Paris", " Berlin", " town", " river", " quiet", " 3", " 42", " x", " time", " is",
         "東京", " café", " Zürich", " naïve", " emoji 😀", " 36", " code", " small", " print",
         " capital", " again", " Germany", " 10", " upon", " there", " tags", " math"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def eval_model(tiny_llama_path, tmp_path_factory) -> Path:
    """The tiny Llama (its tokenizer adds BOS) with its end-of-sequence token made more
    likely (its output row scaled), and a chat template."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("eval-llama") / "model"
    shutil.copytree(tiny_llama_path, folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        model.lm_head.weight[model.config.eos_token_id] *= 3
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


def _items(folder: Path) -> tuple[list[dict], list[str]]:
    """Multiple-choice items: per context, the model's greedy next token as a choice,
    and contexts + words after which the most likely next token is end-of-sequence."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    eos = tokenizer.eos_token_id

    def next_token(text: str) -> int:
        with torch.no_grad():
            return int(model(torch.tensor([tokenizer.encode(text)])).logits[0, -1].argmax())

    items, before_eos = [], []
    for context in CONTEXTS:
        greedy = tokenizer.decode([next_token(context)])
        hits = [w for w in WORDS if next_token(context + w) == eos]
        before_eos += [context + w for w in hits]
        choices = list(dict.fromkeys([greedy, *hits[:1], " Paris", " café"]))
        items.append({"question": context, "choices": choices, "answer": 0})
    return items, before_eos


def _write_tasks(folder: Path, items: list[dict]) -> Path:
    tasks = folder / "tasks"
    tasks.mkdir()
    data = {
        "mc": items,
        "rolling": [{"text": "The capital of Germany is Berlin. Once upon a time there was a "
                             "quiet river."},
                    {"text": "Ünïcödé, 日本語, emoji 😀🎉, and ünïcode again: café, naïve."}],
        "gen": [{"question": c, "answer": " x"} for c in CONTEXTS[:4]],
    }
    for name, rows in data.items():
        (tasks / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    common = "dataset_path: json\ntest_split: test\n"
    specs = {
        "mc": "output_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
              "doc_to_choice: '{{choices}}'\ndoc_to_target: '{{answer}}'\n"
              "target_delimiter: ''\nmetric_list:\n  - metric: acc\n",
        "rolling": "output_type: loglikelihood_rolling\ndoc_to_text: ''\n"
                   "doc_to_target: '{{text}}'\nmetric_list:\n  - metric: word_perplexity\n",
        "gen": "output_type: generate_until\ndoc_to_text: '{{question}}'\n"
               "doc_to_target: '{{answer}}'\ntarget_delimiter: ''\ngeneration_kwargs:\n"
               "  until: ['\\n\\n']\n  max_gen_toks: 8\n  do_sample: false\n"
               "metric_list:\n  - metric: exact_match\n",
    }
    for name, spec in specs.items():
        (tasks / f"tiny_{name}.yaml").write_text(
            f"task: tiny_{name}\n{common}dataset_kwargs:\n  data_files:\n"
            f"    test: {tasks / (name + '.jsonl')}\n{spec}", encoding="utf-8")
    return tasks


def test_lm_eval_numbers_equal_its_hf_backend(eval_model, server_process, tmp_path):
    items, before_eos = _items(eval_model)
    assert before_eos, "no continuation is followed by end-of-sequence: the case is not covered"
    assert any(item["choices"][0] for item in items)
    tasks = _write_tasks(tmp_path, items)
    server = server_process(f"local:{eval_model}", "tiny-eval")
    try:
        url = f"{server.root}/v1"
        local = f"model=tiny-eval,base_url={url}/completions,max_length=128"
        hf = f"pretrained={eval_model},dtype=float32,max_length=128"
        all_tasks = ["tiny_mc", "tiny_rolling", "tiny_gen"]
        runs = {
            "local": {"model": "local-completions", "batch_size": 4, "tasks": all_tasks,
                      "model_args": f"{local},tokenizer_backend=huggingface,"
                                    f"tokenizer={eval_model}"},
            "local_bos": {"model": "local-completions", "tasks": all_tasks,
                          "model_args": f"{local},tokenizer_backend=huggingface,"
                                        f"tokenizer={eval_model},add_bos_token=True"},
            "local_remote": {"model": "local-completions", "tasks": ["tiny_mc"],
                             "model_args": f"{local},tokenizer_backend=remote,"
                                           f"auth_token={server.api_key}"},
            "hf": {"model": "hf", "batch_size": 4, "tasks": all_tasks,
                   "model_args": f"{hf},add_bos_token=False"},
            "hf_bos": {"model": "hf", "tasks": all_tasks, "model_args": f"{hf},add_bos_token=True"},
            "chat": {"model": "local-chat-completions", "tasks": ["tiny_gen"],
                     "apply_chat_template": True,
                     "model_args": f"model=tiny-eval,base_url={url}/chat/completions"},
            "hf_chat": {"model": "hf", "tasks": ["tiny_gen"], "apply_chat_template": True,
                        "model_args": hf},
        }
        env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
               "OPENAI_API_KEY": server.api_key, "TOKENIZERS_PARALLELISM": "false"}
        driver = Path(__file__).with_name("lm_eval_driver.py")
        done = subprocess.run([sys.executable, str(driver), str(tasks), json.dumps(runs)],
                              capture_output=True, text=True, env=env, timeout=540)
        assert done.returncode == 0, done.stderr[-4000:]
    finally:
        server.stop()
    line = next(out for out in done.stdout.splitlines() if out.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS "):])

    for ours, reference in (("local", "hf"), ("local_bos", "hf_bos"), ("local_remote", "hf")):
        for task in results[ours]:
            if task == "tiny_gen":
                _same_texts(results[ours][task], results[reference][task])
                continue
            for doc, responses in results[reference][task].items():
                got = results[ours][task][doc]
                for expected, actual in zip(responses, got, strict=True):
                    expected, actual = expected[0], actual[0]
                    if task == "tiny_mc":  # (log-likelihood, is_greedy)
                        assert float(actual[0]) == pytest.approx(float(expected[0]), abs=TOLERANCE)
                        assert actual[1] == expected[1], (ours, doc, responses, got)
                    else:
                        assert float(actual) == pytest.approx(float(expected), abs=TOLERANCE)
    # BOS on and off are different numbers (else the switch is not tested)
    assert results["hf"]["tiny_rolling"] != results["hf_bos"]["tiny_rolling"]
    # the greedy choices are greedy in both (is_greedy needs the prompt's top logprobs)
    assert any(r[0][0][1] in (True, "True") for r in results["local"]["tiny_mc"].values())
    _same_texts(results["chat"]["tiny_gen"], results["hf_chat"]["tiny_gen"])


def _same_texts(ours: dict, reference: dict) -> None:
    """Greedy generations equal lm-eval's hf backend's, up to how each decodes the ends:
    the server (as vLLM) decodes the new tokens in the prompt's context, so a first
    "▁word" token reads " word" where the hf backend, decoding them alone, drops that
    space; and it does not end a text with a character cut in half, where the hf
    backend decodes the cut bytes to replacement characters ("\ufffd")."""
    assert ours.keys() == reference.keys()
    for doc, responses in reference.items():
        text, expected = ours[doc][0][0], responses[0][0].rstrip("\ufffd")
        assert text == expected or (text[:1] == " " and text[1:] == expected), doc
