"""Scoring at dataset scale, side by side in one run: concurrent `score` calls and
`score_many` against transformers and llama.cpp used by hand, and against LMQL 0.7.3.

    python benchmarks/bench_score_many.py [--repeat 1] [--rows 1000] [--lmql-rows 100]
    python benchmarks/bench_score_many.py --repeat 1 --rows 40 --lmql-rows 0   # smoke run

On the embedded Gemma 3 270M (transformers float32, and llama.cpp on the Q4_K_M GGUF):
- 16 short prompts x 3 values: `asyncio.gather` of `score` against the same 16 calls one
  by one (target: at least 3x faster on transformers);
- `--rows` prompts x 3 values through `score_many` against transformers by hand with a
  batched loop (left-pad 32 prompts, one pass, the values in one pass on the prompts'
  cache; target: within 1.3x), against `llama_cpp.Llama` by hand (each prompt evaluated,
  each value after it), and against LMQL 0.7.3 scoring rows concurrently (target: at
  least 10x faster; LMQL scores `--lmql-rows` rows and its time is scaled to `--rows`;
  0 skips it). Result caches are off; medians of `--repeat` runs (the many-row
  workloads without a warm-up run of their own: the models are warm from the checks of
  their numbers that come first).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import subprocess

import numpy as np

import lmql_nb
from lmql_nb.backends.embedded import embedded_gguf
from lmql_nb.backends.transformers.conversion import embedded_folder

from bench_lmql import HERE, lmql_python
from timing import timed
from workloads import SENTIMENTS, reviews

BATCH = 32  # prompts per pass in the by-hand loop (the engine's worker batch)


def gather_scores(llm, prompts):
    async def together():
        return await asyncio.gather(*[llm.score(p, SENTIMENTS, cache=False) for p in prompts])

    return [r.scores() for r in asyncio.run(together())]


def one_by_one(llm, prompts):
    return [llm.score_sync(p, SENTIMENTS, cache=False).scores() for p in prompts]


def many(llm, prompts):
    table = llm.score_many_sync(prompts, SENTIMENTS, cache=False, progress=False)
    return [r.scores() for r in table]


def transformers_by_hand(folder: str):
    """A batched scoring loop as one would write it with transformers: per batch of
    prompts, one left-padded pass, then the values (joint tokenisation) in one pass on
    the prompts' cache, repeated per value."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def score(prompts):
        results = []
        for start in range(0, len(prompts), BATCH):
            batch = prompts[start:start + BATCH]
            ids = [tokenizer(p).input_ids for p in batch]
            joint = [[tokenizer(p + v).input_ids for v in SENTIMENTS] for p in batch]
            width = max(map(len, ids))
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, seq in enumerate(ids):
                input_ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                            use_cache=True, logits_to_keep=1)
                first = out.logits[:, -1].float().log_softmax(-1)
                cache = copy.deepcopy(out.cache if hasattr(out, "cache") else out.past_key_values)
                cache.batch_repeat_interleave(len(SENTIMENTS))
                tails = [j[len(p):] for p, js in zip(ids, joint) for j in js]
                tail = max(map(len, tails))
                values = torch.zeros((len(tails), tail), dtype=torch.long)
                value_mask = torch.zeros((len(tails), tail), dtype=torch.long)
                for row, t in enumerate(tails):
                    values[row, :len(t)] = torch.tensor(t)
                    value_mask[row, :len(t)] = 1
                full_mask = torch.cat([mask.repeat_interleave(len(SENTIMENTS), 0), value_mask], -1)
                starts = mask.sum(-1).repeat_interleave(len(SENTIMENTS))
                logprobs = model(input_ids=values, attention_mask=full_mask, cache=cache,
                                 position_ids=starts[:, None] + torch.arange(tail)[None],
                                 ).logits.float().log_softmax(-1)
            for row in range(len(batch)):
                scores = []
                for k in range(len(SENTIMENTS)):
                    r = row * len(SENTIMENTS) + k
                    t = tails[r]
                    scores.append(float(first[row, t[0]]) + sum(
                        float(logprobs[r, i - 1, t[i]]) for i in range(1, len(t))))
                results.append(np.array(scores))
        return results

    return score


def llama_by_hand(threads: int):
    """`llama_cpp.Llama` by hand, one sequence at a time: each prompt evaluated, a value's
    first token read from the prompt's last logits, any further tokens evaluated after it
    one by one (rewinding to the prompt's end for each value). Only last logits are kept
    (`logits_all=False`): a 262k vocabulary makes every position's logits costly."""
    import llama_cpp

    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=2048, flash_attn=True,
                              n_threads=threads, n_threads_batch=threads, verbose=False)

    def logprobs_now() -> np.ndarray:
        """The last evaluated token's next-token log-probabilities (`Llama.scores` keeps
        nothing without `logits_all`: read llama.cpp's own buffer)."""
        pointer = llama_cpp.llama_get_logits_ith(by_hand.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(by_hand.n_vocab(),)).astype(np.float64)
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    def score(prompts):
        results = []
        for prompt in prompts:
            ids = by_hand.tokenize(prompt.encode())
            by_hand.reset()
            by_hand.eval(ids)
            after_prompt = logprobs_now()
            scores = []
            for value in SENTIMENTS:
                tail = by_hand.tokenize((prompt + value).encode())[len(ids):]
                total = float(after_prompt[tail[0]])
                by_hand.n_tokens = len(ids)
                for previous, token in zip(tail, tail[1:]):
                    by_hand.eval([previous])
                    total += float(logprobs_now()[token])
                scores.append(total)
            results.append(np.array(scores))
        return results

    return score


def run_lmql(folder: str, rows: int, repeat: int) -> float:
    """LMQL 0.7.3's seconds for `rows` review rows (see bench_lmql.py's environment)."""
    out = subprocess.run([str(lmql_python()), str(HERE / "lmql_worker.py"), folder,
                          str(repeat), "rows", str(rows)],
                         capture_output=True, text=True, cwd=HERE, timeout=7200)
    if out.returncode != 0:
        raise RuntimeError(f"LMQL 0.7.3 failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["rows"]


def largest_difference(a, b) -> float:
    return float(max(np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(a, b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--lmql-rows", type=int, default=100,
                        help="rows LMQL 0.7.3 scores (its time is scaled to --rows); 0 skips")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    args = parser.parse_args()
    short, rows = reviews(16), reviews(args.rows)
    table = []  # (task, lmql_nb seconds, reference, reference seconds, target)

    # transformers -----------------------------------------------------------------------
    import torch

    torch.set_num_threads(args.threads)
    llm = lmql_nb.model("local:gemma-3-270m", threads=args.threads)
    llm.score_sync("warm up", SENTIMENTS, cache=False)
    folder = str(embedded_folder())
    by_hand = transformers_by_hand(folder)
    print(f"largest difference, score_many against the by-hand loop: "
          f"{largest_difference(many(llm, rows[:64]), by_hand(rows[:64])):.2e}")
    print(f"largest difference, gathered against one by one: "
          f"{largest_difference(gather_scores(llm, short), one_by_one(llm, short)):.2e}")
    ours_many = timed(lambda: many(llm, rows), args.repeat, warm_up=False)
    table += [
        ("16 prompts x 3 values, gather", timed(lambda: gather_scores(llm, short), args.repeat),
         "the same 16 one by one", timed(lambda: one_by_one(llm, short), args.repeat),
         ">= 3x faster"),
        (f"{args.rows} prompts x 3 values, score_many", ours_many,
         "transformers by hand, batched", timed(lambda: by_hand(rows), args.repeat,
                                                        warm_up=False),
         "within 1.3x"),
    ]
    if args.lmql_rows:
        lmql_seconds = run_lmql(folder, args.lmql_rows, args.repeat) * args.rows / args.lmql_rows
        table.append((f"{args.rows} prompts x 3 values, score_many", ours_many,
                      f"LMQL 0.7.3 ({args.lmql_rows} rows, scaled)", lmql_seconds,
                      ">= 10x faster"))
    llm = by_hand = None  # free the model before the next part loads its own

    # llama.cpp --------------------------------------------------------------------------
    taking_turns = lmql_nb.model("llama.cpp:gemma-3-270m", threads=args.threads)
    together = lmql_nb.model("llama.cpp:gemma-3-270m", threads=args.threads, throughput=True)
    llama_hand = llama_by_hand(args.threads)
    for model in (taking_turns, together):
        model.score_sync("warm up", SENTIMENTS, cache=False)
    print(f"largest difference on llama.cpp, score_many against Llama by hand: "
          f"{largest_difference(many(taking_turns, rows[:16]), llama_hand(rows[:16])):.2e} "
          f"(throughput mode: "
          f"{largest_difference(many(together, rows[:16]), llama_hand(rows[:16])):.2e})")
    hand_rows = timed(lambda: llama_hand(rows), args.repeat, warm_up=False)
    table += [
        ("llama.cpp 16 x 3, gather", timed(lambda: gather_scores(taking_turns, short),
                                           args.repeat),
         "the same 16 one by one", timed(lambda: one_by_one(taking_turns, short), args.repeat),
         ""),
        ("llama.cpp 16 x 3, gather, throughput", timed(lambda: gather_scores(together, short),
                                                       args.repeat),
         "the same 16 one by one", timed(lambda: one_by_one(together, short), args.repeat), ""),
        (f"llama.cpp {args.rows} x 3, score_many", timed(lambda: many(taking_turns, rows),
                                                         args.repeat, warm_up=False),
         "llama_cpp.Llama by hand", hand_rows, ""),
        (f"llama.cpp {args.rows} x 3, score_many, throughput",
         timed(lambda: many(together, rows), args.repeat, warm_up=False),
         "llama_cpp.Llama by hand",
         hand_rows, ""),
    ]

    print(f"\nGemma 3 270M, {args.threads} thread(s), median of {args.repeat}")
    print(f"{'task':<46} {'lmql_nb':>9}  {'reference':<34} {'ref time':>9}  {'ratio':>6}  target")
    for task, ours, reference, theirs, target in table:
        print(f"{task:<46} {ours:>8.2f}s  {reference:<34} {theirs:>8.2f}s  "
              f"{ours / theirs:>5.2f}x  {target}")
    print("\nratio = lmql_nb time / reference time (below 1 is faster than the reference)")


if __name__ == "__main__":
    main()
