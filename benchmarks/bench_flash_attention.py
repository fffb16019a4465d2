"""llama.cpp with flash attention on and off: accuracy against float32, and speed.

    python benchmarks/bench_flash_attention.py [--repeat 3] [--threads N]

On the embedded Gemma 3 270M GGUF (Q4_K_M), the values of `workloads.VALUES` are scored
after the short and the ~400-token prompt with `flash_attn=False` and `flash_attn=True`.
Accuracy: how far each value's log-probability lies from the float32 reference (the
same GGUF de-quantised to float32 and run by transformers, `local:gemma-3-270m`), as the
mean (over all values, and per prompt) and largest absolute difference; the quantisation itself accounts for most of it,
so the question is which setting adds less. Speed: medians of `--repeat` runs of greedy
32 tokens and of scoring the values after the long prompt. Result caches are off.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import lmql_nb

from timing import timed
from workloads import LONG_PROMPT, PROMPT, VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    args = parser.parse_args()

    prompts = (PROMPT, LONG_PROMPT)
    reference = lmql_nb.model("local:gemma-3-270m", threads=args.threads)
    expected = np.concatenate([reference.score_sync(p, VALUES, cache=False).scores()
                               for p in prompts])
    rows = []
    for flash in (False, True):
        llm = lmql_nb.model("llama.cpp:gemma-3-270m", threads=args.threads, flash_attn=flash)
        scores = np.concatenate([llm.score_sync(p, VALUES, cache=False).scores()
                                 for p in prompts])
        error = np.abs(scores - expected)
        short, long = error[:len(VALUES)].mean(), error[len(VALUES):].mean()
        greedy = timed(lambda llm=llm: llm.generate_sync(PROMPT, max_tokens=32, cache=False),
                       args.repeat)
        score = timed(lambda llm=llm: llm.score_sync(LONG_PROMPT, VALUES, cache=False),
                      args.repeat)
        rows.append((flash, error.mean(), short, long, error.max(), greedy, score))
    print(f"{'flash_attn':<11} {'mean |diff|':>12} {'short':>7} {'long':>7} {'max |diff|':>11} "
          f"{'greedy 32 (s)':>14} {'score 10 (s)':>13}")
    for flash, mean, short, long, largest, greedy, score in rows:
        print(f"{str(flash):<11} {mean:>12.4f} {short:>7.4f} {long:>7.4f} {largest:>11.4f} "
              f"{greedy:>14.3f} {score:>13.3f}")


if __name__ == "__main__":
    main()
