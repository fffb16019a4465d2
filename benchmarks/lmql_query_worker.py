"""Runs inside LMQL 0.7.3's own virtual environment (see bench_query.py); prints JSON.

Usage: python lmql_query_worker.py MODEL_FOLDER REPEAT [GGUF]
(with GGUF: that file on LMQL's llama.cpp backend, the folder's tokenizer;
see lmql_models.py)
Times the chain-of-thought program of workloads.QUERY with a question LMQL has not seen
on every run. All async work runs in one asyncio.run: LMQL 0.7.3 hangs on a second one.
"""

import asyncio
import json
import statistics
import sys
import time

import lmql

import lmql_models
from workloads import QUERY, QUERY_QUESTION


async def main(folder, repeat, gguf=None):
    model = lmql_models.model(folder, gguf)
    times, cpu = [], []
    result = None
    for run in range(-1, repeat):  # run -1 warms up
        started, used = time.perf_counter(), lmql_models.cpu_seconds()
        result = await lmql.run(QUERY, question=QUERY_QUESTION.format(n=run + 10), model=model)
        if run >= 0:
            times.append(time.perf_counter() - started)
            cpu.append(lmql_models.cpu_seconds() - used)
    result = result[0] if isinstance(result, list) else result
    print(json.dumps({"query": statistics.median(times), "query cpu": statistics.median(cpu),
                      "prompt": result.prompt}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4]))
