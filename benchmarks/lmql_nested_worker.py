"""Runs inside LMQL 0.7.3's own virtual environment (see bench_nested.py); prints JSON.

Usage: python lmql_nested_worker.py MODEL_FOLDER REPEAT
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

from workloads import NESTED_INNER, NESTED_OUTER, QUERY_QUESTION, TOOL_LOOP, calc

think = lmql.query("lmql\n" + textwrap.dedent(NESTED_INNER))
outer = lmql.query("lmql\n" + textwrap.dedent(NESTED_OUTER))
tools = lmql.query("lmql\n" + textwrap.dedent(TOOL_LOOP))


async def main(folder, repeat):
    model = lmql.model(f"local:{folder}", cuda=False)
    results = {}
    run = 10
    for name, query in (("nested", outer), ("tool loop", tools)):
        times = []
        for attempt in range(-1, repeat):  # attempt -1 warms up
            run += 1
            started = time.perf_counter()
            await query(question=QUERY_QUESTION.format(n=run), model=model)
            if attempt >= 0:
                times.append(time.perf_counter() - started)
        results[name] = statistics.median(times)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
