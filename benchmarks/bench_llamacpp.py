"""lmql_nb on llama.cpp against `llama_cpp.Llama` used by hand, side by side in one process.

    python benchmarks/bench_llamacpp.py [--repeat 3] [--threads N]

On the embedded Gemma 3 270M GGUF as it is (Q4_K_M): greedy 32 tokens; scoring 10 short
values after a ~400-token prompt (by hand: the prompt evaluated once, each value after it
by rewinding `n_tokens`); the cost of a constraint on greedy generation; and 8
concurrent generate calls with `throughput=True` against the default, where calls take
turns within each step. Both sides
use the same threads and flash attention (on: lmql_nb's default). Medians of
`--repeat` runs; result caches are off.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import numpy as np

import lmql_nb
from lmql_nb.backends.embedded import embedded_gguf

from timing import timed
from workloads import CONCURRENT, LONG_PROMPT, PROMPT, VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    args = parser.parse_args()

    import llama_cpp

    by_hand = llama_cpp.Llama(model_path=str(embedded_gguf()), n_ctx=2048, logits_all=True,
                              flash_attn=True, n_threads=args.threads,
                              n_threads_batch=args.threads, verbose=False)
    llm = lmql_nb.model("llama.cpp:gemma-3-270m", threads=args.threads)
    together = lmql_nb.model("llama.cpp:gemma-3-270m", threads=args.threads, throughput=True)

    def greedy_by_hand():
        by_hand.reset()
        return by_hand.create_completion(PROMPT, max_tokens=32, temperature=0.0,
                                         repeat_penalty=1.0)["choices"][0]["text"]

    def greedy_ours():
        return llm.generate_sync(PROMPT, max_tokens=32, cache=False)

    assert greedy_ours() == greedy_by_hand(), "the two greedy texts differ"

    prompt_ids = by_hand.tokenize(LONG_PROMPT.encode())
    value_ids = [by_hand.tokenize((LONG_PROMPT + v).encode())[len(prompt_ids):] for v in VALUES]

    def score_by_hand():
        by_hand.reset()
        by_hand.eval(prompt_ids)
        scores = []
        for ids in value_ids:
            by_hand.n_tokens = len(prompt_ids)  # rewind: the prompt's cells are reused
            by_hand.eval(ids)
            logits = np.array(by_hand.scores[len(prompt_ids) - 1:len(prompt_ids) + len(ids) - 1])
            logprobs = logits - logits.max(-1, keepdims=True)
            logprobs -= np.log(np.exp(logprobs).sum(-1, keepdims=True))
            scores.append(float(sum(logprobs[i, t] for i, t in enumerate(ids))))
        return scores

    def score_ours():
        return llm.score_sync(LONG_PROMPT, VALUES, cache=False).scores()

    def constrained():
        return llm.generate_sync(PROMPT, max_tokens=32, cache=False,
                                 regex="[A-Za-z0-9 ,.;:'\"!?()\\n-]*")

    def gathered(model):
        async def run():
            return await asyncio.gather(*[model.generate(p, max_tokens=16, cache=False)
                                          for p in CONCURRENT])
        return asyncio.run(run())

    rows = [
        ("greedy 32 tokens", timed(greedy_ours, args.repeat), timed(greedy_by_hand, args.repeat),
         "llama_cpp.Llama by hand"),
        ("8 concurrent generates x 16, throughput=True", timed(lambda: gathered(together),
                                                               args.repeat),
         timed(lambda: gathered(llm), args.repeat), "the same, default (calls take turns)"),
        (f"score {len(VALUES)} values after {len(prompt_ids)} tokens",
         timed(score_ours, args.repeat), timed(score_by_hand, args.repeat),
         "llama_cpp.Llama by hand, prompt once"),
        ("greedy 32 tokens, regex constraint", timed(constrained, args.repeat),
         timed(greedy_ours, args.repeat), "lmql_nb unconstrained"),
    ]
    print(f"llama.cpp backend, Gemma 3 270M Q4_K_M, {args.threads} thread(s), "
          f"median of {args.repeat}")
    print(f"{'task':<46} {'lmql_nb':>10} {'reference':>10} {'ratio':>7}  reference")
    for task, ours, reference, what in rows:
        print(f"{task:<46} {ours * 1000:>8.0f}ms {reference * 1000:>8.0f}ms "
              f"{ours / reference:>6.2f}x  {what}")


if __name__ == "__main__":
    main()
