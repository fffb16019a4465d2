"""Independent computations with transformers used directly: what our results must equal."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.lru_cache(maxsize=8)
def load(path: Path):
    """transformers' own model and tokenizer for a folder (cached per test session)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    return model, tokenizer


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    ids = tokenizer(prompt).input_ids
    return ids if ids else [tokenizer.bos_token_id]


def complete_text(text: str) -> str:
    """Text as lmql_nb promises it: no broken character (U+FFFD) left at the end by a
    generation that stopped inside a multi-byte character."""
    return text.rstrip("\ufffd")


def greedy(path: Path, prompt: str, max_new_tokens: int) -> str:
    """transformers' `generate` with greedy decoding; the completion's text."""
    model, tokenizer = load(path)
    ids = torch.tensor([prompt_ids(tokenizer, prompt)])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    return completion_text(tokenizer, out[0].tolist(), ids.shape[1])


def completion_text(tokenizer, ids: list[int], prompt_length: int) -> str:
    """What the generated ids add to the decoded text of the prompt (decoding the
    completion alone would lose a leading space to SentencePiece-style decoders)."""
    prompt = tokenizer.decode(ids[:prompt_length], skip_special_tokens=True)
    full = tokenizer.decode(ids, skip_special_tokens=True)
    if not full.startswith(prompt):  # decoding merged across the boundary: decode alone
        return complete_text(tokenizer.decode(ids[prompt_length:], skip_special_tokens=True))
    return complete_text(full[len(prompt):])


def generated_ids(path: Path, prompt: str, max_new_tokens: int, **options) -> list[int]:
    """transformers' `generate` with greedy decoding and `options` (its own, e.g.
    repetition_penalty); the generated ids (an end-of-sequence that ended it included)."""
    model, tokenizer = load(path)
    ids = torch.tensor([prompt_ids(tokenizer, prompt)])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.eos_token_id, **options)
    return out[0, ids.shape[1]:].tolist()


def openai_penalised_greedy_ids(path: Path, prompt: str, max_new_tokens: int,
                                frequency_penalty: float = 0.0,
                                presence_penalty: float = 0.0) -> list[int]:
    """Greedy decoding by hand over full forward passes with OpenAI's penalties: each
    step, logit[j] -= frequency_penalty * count of j in the output so far, and
    -= presence_penalty if j occurs in it; the generated ids (an end-of-sequence that
    ended it included)."""
    _, tokenizer = load(path)
    return openai_penalised_continuation(path, prompt_ids(tokenizer, prompt), [],
                                         max_new_tokens, frequency_penalty, presence_penalty)


def openai_penalised_continuation(path: Path, context: list[int], output: list[int],
                                  max_new_tokens: int, frequency_penalty: float,
                                  presence_penalty: float) -> list[int]:
    """`openai_penalised_greedy_ids` after exactly the token ids `context` (not output)
    and `output` (output so far, counted by the penalties); the new ids."""
    model, tokenizer = load(path)
    output = list(output)
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([context + output])).logits[0, -1].float()
            counts = torch.bincount(torch.tensor(output, dtype=torch.long),
                                    minlength=logits.shape[-1]).float()
            logits = logits - frequency_penalty * counts - presence_penalty * (counts > 0)
            output.append(int(logits.argmax()))
            new.append(output[-1])
            if output[-1] == tokenizer.eos_token_id:
                break
    return new


def beams(path: Path, prompt: str, max_new_tokens: int, n: int, **options) -> list[str]:
    """transformers' beam search (with `options`, its own); the n best completions'
    texts."""
    model, tokenizer = load(path)
    ids = torch.tensor([prompt_ids(tokenizer, prompt)])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             num_beams=n, num_return_sequences=n,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id,
                             **options)
    return [completion_text(tokenizer, row.tolist(), ids.shape[1]) for row in out]


def token_logprobs(path: Path, ids: list[int]) -> torch.Tensor:
    """Log-softmax of one full forward pass over `ids`: row i predicts token i + 1."""
    model, _ = load(path)
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    return logits.log_softmax(-1)


def continuation_logprob(path: Path, prompt: str, value: str) -> float:
    """log P(value | prompt) with joint tokenisation, from one forward pass.

    The value's tokens are the joint tokens from the first one that differs from the
    prompt's own tokenisation (a boundary-straddling token belongs to the value).
    """
    _, tokenizer = load(path)
    joint = prompt_ids(tokenizer, prompt + value)
    alone = prompt_ids(tokenizer, prompt)
    start = next((i for i, (a, b) in enumerate(zip(joint, alone)) if a != b),
                 min(len(joint), len(alone)))
    if start == 0:
        joint, start = [tokenizer.bos_token_id] + joint, 1
    logprobs = token_logprobs(path, joint)
    return float(sum(logprobs[i - 1, joint[i]] for i in range(start, len(joint))))


def greedy_ids(path: Path, ids: list[int], max_new_tokens: int) -> list[int]:
    """transformers' greedy `generate` after exactly the token ids `ids`; the new ids,
    up to and without the end-of-sequence token."""
    model, tokenizer = load(path)
    tensor = torch.tensor([ids])
    with torch.inference_mode():
        out = model.generate(tensor, attention_mask=torch.ones_like(tensor), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    new = out[0, len(ids):].tolist()
    return new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new
