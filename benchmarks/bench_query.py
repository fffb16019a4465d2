"""A query program against the same calls by hand, and against LMQL 0.7.3.

    python benchmarks/bench_query.py [--repeat 3] [--skip-lmql]

The program (workloads.QUERY) is chain-of-thought: 4 holes of up to 8 tokens, then a
3-value `distribution`. lmql_nb runs it as a query (holes continue one growing prompt)
and as the same `generate`/`score` calls written by hand, on float32 `local:` and on
`llama.cpp:`, with the engine's prefix cache on (what a query is meant to use) and the
result cache off (a question asked in an earlier run would be answered from disk).
LMQL 0.7.3 runs the same program in its own environment (see bench_lmql.py) on the same
weights as each row: the float32 transformers folder, and the same GGUF file through
LMQL's own llama.cpp backend (lmql_models.py), with LMQL's defaults, each right after
lmql_nb's runs on the same model.
Targets (issues 18, 24): query / by hand <= 1.15; LMQL / query >= 1.7 (float32) and >= 5
(llama.cpp). Besides wall times it prints the CPU seconds each query run cost (lmql_nb's
process; LMQL's process and the child it runs its model in, from /proc), which a busy
machine distorts far less.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

from bench_lmql import run_worker
from timing import counting_cpu, interleaved
from workloads import QUERY, QUERY_CHECK, QUERY_QUESTION, QUERY_STEPS

import lmql_nb
from lmql_nb.backends.embedded import embedded_gguf
from lmql_nb.backends.transformers.conversion import embedded_folder

HERE = Path(__file__).resolve().parent


def by_hand(llm: lmql_nb.LLM, question: str) -> str:
    """The program's calls, written out: each hole continues the prompt so far."""
    prompt = f"Q: {question}\nA: Let's think step by step.\n"
    for step in QUERY_STEPS:
        prompt += step
        prompt += llm.generate_sync(prompt, max_tokens=8)
    text, values = QUERY_CHECK
    prompt += text
    scored = llm.score_sync(prompt, values)
    return prompt + scored.argmax()


def as_query(llm: lmql_nb.LLM, question: str) -> str:
    return lmql_nb.run_sync(QUERY, question=question, model=llm).prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-lmql", action="store_true",
                        help="time lmql_nb only (no LMQL 0.7.3 environment)")
    args = parser.parse_args()
    lmql_nb.set_cache(False)  # results computed every time; prefix caches stay on
    runs = itertools.count()
    rows = {}
    theirs: dict[str, dict] | None = None if args.skip_lmql else {}
    for model_id, gguf in (("local:gemma-3-270m", None),
                           ("llama.cpp:gemma-3-270m", str(embedded_gguf()))):
        llm = lmql_nb.model(model_id)
        question = QUERY_QUESTION.format(n=1000)
        # the same text both ways (a check, and the warm-up)
        assert as_query(llm, question) == by_hand(llm, question), "query and calls differ"
        cpu: list[float] = []
        hand, query = interleaved(
            lambda m=llm: by_hand(m, QUERY_QUESTION.format(n=next(runs))),
            counting_cpu(lambda m=llm: as_query(m, QUERY_QUESTION.format(n=next(runs))), cpu),
            args.repeat)
        rows[model_id] = (hand, query, statistics.median(cpu[1:]))  # cpu[0]: the warm-up
        if theirs is not None:  # LMQL right after, on the same weights
            theirs[model_id] = run_worker("lmql_query_worker.py", str(embedded_folder()),
                                          args.repeat, gguf)

    print(f"{'model':<26} {'by hand':>9} {'query':>9} {'query/hand':>11}  target <= 1.15x"
          + ("" if theirs is None else f"   {'LMQL 0.7.3':>10} {'LMQL/query':>10}  target"
                                       "   CPU s: query, LMQL, LMQL/query"))
    for model_id, (hand, query, query_cpu) in rows.items():
        line = f"{model_id:<26} {hand:>8.3f}s {query:>8.3f}s {query / hand:>10.2f}x"
        if theirs is not None:
            goal = ">= 5x" if model_id.startswith("llama.cpp") else ">= 1.7x"
            their, their_cpu = theirs[model_id]["query"], theirs[model_id]["query cpu"]
            line += (f"   {'':>14} {their:>9.3f}s {their / query:>9.2f}x  {goal}"
                     f"   {query_cpu:.2f}, {their_cpu:.2f}, {their_cpu / query_cpu:.2f}x")
        print(line)


if __name__ == "__main__":
    main()
