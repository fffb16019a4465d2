"""Runs inside LMQL 0.7.3's own virtual environment (see bench_lmql.py); prints JSON.

Usage: python lmql_worker.py MODEL_FOLDER REPEAT [rows N]
(with `rows N`: only the dataset workload, N review prompts x 3 labels scored concurrently)
Every timed call uses a prompt LMQL has not seen (its caches stay at their defaults).
All async work runs in one asyncio.run: LMQL 0.7.3 hangs on a second one.
"""

import asyncio
import json
import statistics
import sys
import time

import lmql_models
from workloads import CONCURRENT, LONG_PROMPT, PROMPT, SENTIMENTS, VALUES, reviews


async def timed(make_call, repeat):
    await make_call(-1)  # warm-up
    times = []
    for run in range(repeat):
        started = time.perf_counter()
        await make_call(run)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def score_rows(folder, repeat, count):
    model = lmql_models.model(folder)
    prompts = reviews(count)
    seconds = await timed(lambda run: asyncio.gather(*[model.score(f"{run}. {p}", SENTIMENTS)
                                                       for p in prompts]), repeat)
    print(json.dumps({"rows": seconds}))


async def main(folder, repeat):
    model = lmql_models.model(folder)
    results = {}
    results["greedy"] = await timed(
        lambda run: model.generate(f"{run}. {PROMPT}", max_tokens=32), repeat)
    results["score"] = await timed(
        lambda run: model.score(f"{run}. {LONG_PROMPT}", VALUES), repeat)
    results["gather"] = await timed(
        lambda run: asyncio.gather(*[model.generate(f"{run}. {p}", max_tokens=16)
                                     for p in CONCURRENT]), repeat)
    scored = await model.score(PROMPT, VALUES[:3])
    results["paris"] = [float(s) for s in scored.scores()]
    print(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[3:4] == ["rows"]:
        asyncio.run(score_rows(sys.argv[1], int(sys.argv[2]), int(sys.argv[4])))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
