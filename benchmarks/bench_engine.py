"""lmql_nb against transformers used by hand, side by side in one process.

    python benchmarks/bench_engine.py [--repeat 3] [--threads N]

On the embedded Gemma 3 270M (float32, CPU): greedy 32 tokens; scoring 10 short values
after a ~400-token prompt; 8 concurrent generates of 16 tokens against the same 8 one
by one. Each row reports the median of `--repeat` runs and the ratio to the reference.
Result caches are off (`cache=False`) so every call computes.
"""

from __future__ import annotations

import argparse
import asyncio
import copy

import torch

import lmql_nb
from lmql_nb.backends.transformers.conversion import embedded_folder

from timing import timed
from workloads import CONCURRENT, LONG_PROMPT, PROMPT, VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both sides (default: torch's choice)")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = str(embedded_folder())
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {"threads": args.threads} if args.threads else {}
    llm = lmql_nb.model("local:gemma-3-270m", **options)
    llm.generate_sync("warm up", max_tokens=1, cache=False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"long prompt {len(tokenizer(LONG_PROMPT).input_ids)} tokens\n")

    rows = []

    def by_hand_greedy(prompt: str, tokens: int):
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            return model.generate(**ids, max_new_tokens=tokens, min_new_tokens=tokens,
                                  do_sample=False)

    ours = timed(lambda: llm.generate_sync(PROMPT, max_tokens=32, cache=False), args.repeat)
    theirs = timed(lambda: by_hand_greedy(PROMPT, 32), args.repeat)
    rows.append(("greedy 32 tokens", ours, "model.generate", theirs))

    def per_value_forward():
        with torch.inference_mode():
            for value in VALUES:
                ids = tokenizer(LONG_PROMPT + value, return_tensors="pt").input_ids
                model(ids).logits.log_softmax(-1)

    def one_pass_limit():
        prompt_ids = tokenizer(LONG_PROMPT, return_tensors="pt").input_ids
        value_ids = [tokenizer(v, add_special_tokens=False).input_ids for v in VALUES]
        width = max(len(v) for v in value_ids)
        batch = torch.zeros((len(VALUES), width), dtype=torch.long)
        mask = torch.ones((len(VALUES), prompt_ids.shape[1] + width), dtype=torch.long)
        for row, ids in enumerate(value_ids):
            batch[row, :len(ids)] = torch.tensor(ids)
            mask[row, prompt_ids.shape[1] + len(ids):] = 0
        with torch.inference_mode():
            out = model(prompt_ids, use_cache=True, logits_to_keep=1)
            cache = copy.deepcopy(out.cache if hasattr(out, "cache") else out.past_key_values)
            cache.batch_repeat_interleave(len(VALUES))
            positions = torch.arange(prompt_ids.shape[1], prompt_ids.shape[1] + width)
            model(batch, attention_mask=mask, cache=cache,
                  position_ids=positions[None].expand(len(VALUES), -1)).logits.log_softmax(-1)

    ours = timed(lambda: llm.score_sync(LONG_PROMPT, VALUES, cache=False), args.repeat)
    rows.append(("score 10 values, 400-token prompt", ours, "one forward per value",
                 timed(per_value_forward, args.repeat)))
    rows.append(("score 10 values, 400-token prompt", ours, "one-pass limit by hand",
                 timed(one_pass_limit, args.repeat)))

    async def gathered():
        return await asyncio.gather(*[llm.generate(p, max_tokens=16, cache=False)
                                      for p in CONCURRENT])

    ours = timed(lambda: asyncio.run(gathered()), args.repeat)
    one_by_one = timed(lambda: [llm.generate_sync(p, max_tokens=16, cache=False)
                                for p in CONCURRENT], args.repeat)
    rows.append(("8 concurrent generates x 16 tokens", ours, "the same 8 one by one", one_by_one))
    by_hand = timed(lambda: [by_hand_greedy(p, 16) for p in CONCURRENT], args.repeat)
    rows.append(("8 concurrent generates x 16 tokens", ours, "model.generate x 8", by_hand))

    print(f"{'task':<36} {'lmql_nb':>9}  {'reference':<26} {'ref time':>9}  {'ratio':>6}")
    for task, ours, reference, theirs in rows:
        print(f"{task:<36} {ours:>8.3f}s  {reference:<26} {theirs:>8.3f}s  {ours / theirs:>5.2f}x")
    print("\nratio = lmql_nb time / reference time (below 1 is faster than the reference)")


if __name__ == "__main__":
    main()
