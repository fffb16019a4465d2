"""Runs inside LMQL 0.7.3's own virtual environment (see bench_nested.py); prints JSON.

Usage: python lmql_nested_worker.py MODEL_FOLDER REPEAT [GGUF]
(with GGUF: that file on LMQL's llama.cpp backend, the folder's tokenizer;
see lmql_models.py)
Times the nested-query program and the tool loop of workloads.py with a question LMQL has
not seen on every run. All async work runs in one asyncio.run: LMQL 0.7.3 hangs on a
second one.
"""

import asyncio
import json
import statistics
import sys
import textwrap
import time

import lmql

import lmql_models
from workloads import NESTED_INNER, NESTED_OUTER, QUERY_QUESTION, TOOL_LOOP, calc


class Nested:
    """LMQL 0.7.3 runs `[X: q]` for decorated query functions only: this gives a query
    made from a string what the decorator's wrapper has."""

    def __init__(self, query, name):
        query.name = name
        self.__lmql_query_function__ = query


think = Nested(lmql.query("lmql\n" + textwrap.dedent(NESTED_INNER)), "think")
outer = lmql.query("lmql\n" + textwrap.dedent(NESTED_OUTER))
tools = lmql.query("lmql\n" + textwrap.dedent(TOOL_LOOP))


async def main(folder, repeat, gguf=None):
    model = lmql_models.model(folder, gguf)
    results = {}
    prompts = {}
    run = 10
    for name, query, reads in (("nested", outer, {"think": think}),
                               ("tool loop", tools, {"calc": calc})):
        times, cpu = [], []
        for attempt in range(-1, repeat):  # attempt -1 warms up
            run += 1
            started, used = time.perf_counter(), lmql_models.cpu_seconds()
            result = await query(question=QUERY_QUESTION.format(n=run), model=model, **reads)
            if attempt >= 0:
                times.append(time.perf_counter() - started)
                cpu.append(lmql_models.cpu_seconds() - used)
        results[name] = statistics.median(times)
        results[f"{name} cpu"] = statistics.median(cpu)
        prompts[name] = str(result)
    print(json.dumps({**results, "outputs": prompts}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4]))
