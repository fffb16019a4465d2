"""A nested-query program and a tool loop against the same calls by hand, and against
LMQL 0.7.3 (issue 24).

    python benchmarks/bench_nested.py [--repeat 3] [--skip-lmql]

The programs (workloads.NESTED_OUTER with NESTED_INNER, and workloads.TOOL_LOOP) run as
queries on float32 `local:` and on `llama.cpp:`, and as the same `generate` calls written
by hand (each hole continues the prompt so far; the nested query's instructions are
dropped once it returns). The engine's prefix cache is on (what a query is meant to use),
the result cache off (an answer from an earlier run would come from disk); query and by
hand run by turns, so that a busy machine slows both alike. LMQL 0.7.3 runs the same
programs in its own environment (see bench_lmql.py; lmql_nested_worker.py) on the same
weights as each row: the float32 transformers folder, and the same GGUF file through
LMQL's own llama.cpp backend (lmql_models.py), with LMQL's defaults, each right after
lmql_nb's runs on the same model. Every run asks a question no run asked before.
Targets (issue 24): query / by hand <= 1.15; LMQL / query >= 1.7 (float32) and >= 5
(llama.cpp). Besides wall times it prints the CPU seconds each query run cost (lmql_nb's
process; LMQL's process and the child it runs its model in, from /proc), which a busy
machine distorts far less.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import textwrap
from pathlib import Path

from bench_lmql import run_worker
from timing import counting_cpu, interleaved
from workloads import NESTED_INNER, NESTED_OUTER, NESTED_QUESTIONS, QUERY_QUESTION, TOOL_LOOP, calc

import lmql_nb
from lmql_nb.backends.embedded import embedded_gguf
from lmql_nb.backends.transformers.conversion import embedded_folder
from lmql_nb.core import aio

HERE = Path(__file__).resolve().parent


def nested_by_hand(llm: lmql_nb.LLM, question: str) -> str:
    """The nested program's calls, written out."""
    prompt = ""
    for head in NESTED_QUESTIONS:
        prompt += head.format(question=question)
        inner = prompt + "A: Let's think step by step.\n"
        inner += llm.generate_sync(inner, max_tokens=8)
        inner += "So the answer is"
        prompt += llm.generate_sync(inner, max_tokens=8).strip()
    prompt += "\nFinal answer:"
    return prompt + llm.generate_sync(prompt, max_tokens=8)


def tools_by_hand(llm: lmql_nb.LLM, question: str) -> str:
    """The tool loop's calls, written out."""
    prompt = f"Q: {question}\nLet's compute it step by step.\n"
    for i in range(4):
        prompt += f"Step {i + 1}:"
        expression = llm.generate_sync(prompt, max_tokens=8, stops_at="=")
        prompt += expression + f" {calc(expression)}\n"
    prompt += "Answer:"
    return prompt + llm.generate_sync(prompt, max_tokens=8)


def programs() -> tuple[lmql_nb.QueryFunction, lmql_nb.QueryFunction, dict]:
    """The two programs, and the names they read besides `question`."""
    think = lmql_nb.query(textwrap.dedent(NESTED_INNER), is_async=False)
    outer = lmql_nb.query(textwrap.dedent(NESTED_OUTER), is_async=False)
    tools = lmql_nb.query(textwrap.dedent(TOOL_LOOP), is_async=False)
    return outer, tools, {"think": think, "calc": calc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-lmql", action="store_true",
                        help="time lmql_nb only (no LMQL 0.7.3 environment)")
    args = parser.parse_args()
    lmql_nb.set_cache(False)  # results computed every time; prefix caches stay on
    runs = itertools.count()
    outer, tools, names = programs()
    rows = {}
    theirs: dict[str, dict] | None = None if args.skip_lmql else {}
    for model_id, gguf in (("local:gemma-3-270m", None),
                           ("llama.cpp:gemma-3-270m", str(embedded_gguf()))):
        llm = lmql_nb.model(model_id)
        for name, query, by_hand in (("nested", outer, nested_by_hand),
                                     ("tool loop", tools, tools_by_hand)):
            def as_query(question: str, q=query, m=llm) -> str:
                reads = {k: v for k, v in names.items() if k in q.program.parameters}
                outcomes = aio.run_sync(q.outcomes, question=question, model=m, **reads)
                return outcomes[0].result.prompt

            question = QUERY_QUESTION.format(n=1000)
            # the same text both ways (a check, and the warm-up)
            assert as_query(question) == by_hand(llm, question), f"{name}: query and calls differ"
            cpu: list[float] = []
            hand, timed_query = interleaved(
                lambda h=by_hand, m=llm: h(m, QUERY_QUESTION.format(n=next(runs))),
                counting_cpu(lambda f=as_query: f(QUERY_QUESTION.format(n=next(runs))), cpu),
                args.repeat)
            rows[(model_id, name)] = (hand, timed_query, statistics.median(cpu[1:]))
        if theirs is not None:  # LMQL right after, on the same weights
            theirs[model_id] = run_worker("lmql_nested_worker.py", str(embedded_folder()),
                                          args.repeat, gguf)

    print(f"{'model':<24} {'program':<10} {'by hand':>9} {'query':>9} {'query/hand':>11}"
          "  target <= 1.15x" + ("" if theirs is None else
                                 f"   {'LMQL 0.7.3':>10} {'LMQL/query':>10}  target"
                                 "   CPU s: query, LMQL, LMQL/query"))
    for (model_id, name), (hand, query, query_cpu) in rows.items():
        line = (f"{model_id:<24} {name:<10} {hand:>8.3f}s {query:>8.3f}s "
                f"{query / hand:>10.2f}x")
        if theirs is not None:
            goal = ">= 5x" if model_id.startswith("llama.cpp") else ">= 1.7x"
            their, their_cpu = theirs[model_id][name], theirs[model_id][f"{name} cpu"]
            line += (f"   {'':>14} {their:>9.3f}s {their / query:>9.2f}x  {goal}"
                     f"   {query_cpu:.2f}, {their_cpu:.2f}, {their_cpu / query_cpu:.2f}x")
        print(line)


if __name__ == "__main__":
    main()
