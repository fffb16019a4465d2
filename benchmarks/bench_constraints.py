"""Constrained against unconstrained greedy generation on the embedded Gemma 3 270M.

    python benchmarks/bench_constraints.py [--tokens 32] [--repeat 5]

Prints, in one process: the tokenizer set-up (paid once per tokenizer per process); the
grammar build time per constraint kind once the set-up is cached (target < 10 ms; this
includes the matcher and its first mask); and for greedy generation of the same number
of tokens, the time per token with and without each constraint and their ratio (target:
at most 5% overhead), in wall-clock and in process CPU time. Runs alternate between the variants and the median is reported, so
that load from other processes spreads evenly; as that load still moves whole runs,
the constraint's own work per token (mask, apply, consume: replayed on the generated
tokens) is also timed directly, as a share of an unconstrained step. The constraints
never end the text early: every run generates exactly `--tokens` tokens.

`where+len` is the costly case: a character bound (`len(RESPONSE) < n`) combined with
another constraint gives llguidance's lexer a new state at every character, so each
token's mask is computed afresh (milliseconds on a 262k vocabulary) instead of reused.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import lmql_nb
from lmql_nb.constraints import parse_constraints
from lmql_nb.constraints.matcher import Constraint, tokenizer_setup
from lmql_nb.core.options import parse_generate_options

PROMPT = "Write a short story about a lighthouse keeper and a storm.\n\n"
GENERATION = {
    "none": {},
    "regex": {"regex": "[A-Za-z0-9 ,.;:'\"!?()\\n-]*"},
    "where": {"where": 'REGEX(RESPONSE, "[^<>]*") and STOPS_AT(RESPONSE, "THE END")'},
    "stops_at": {"stops_at": ["THE END", "\n\n\n\n"]},
    # a character bound combined with another constraint: the costly case (see above)
    "where+len": {"where": 'len(RESPONSE) < 2000 and STOPS_AT(RESPONSE, "THE END")'},
}
BUILDS = {
    "regex": {"regex": r"[0-9]{4}-[0-9]{2}-[0-9]{2}"},
    "choices": {"choices": [" yes", " no", " maybe"]},
    "type=int": {"type": int},
    "json_schema": {"json_schema": {"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}},
    "where": {"where": 'REGEX(RESPONSE, "[a-z ]+") and STOPS_BEFORE(RESPONSE, "\\n") '
                       "and len(RESPONSE) < 80"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    llm = lmql_nb.model("local:gemma-3-270m")
    llm.generate_sync("Hi", max_tokens=1, cache=False)  # load the model
    tokenizer = llm.get_tokenizer()
    vocab = llm.backend._model.model.get_output_embeddings().weight.shape[0]

    start = time.perf_counter()
    tokenizer_setup(tokenizer)
    print(f"tokenizer set-up (once per tokenizer): {time.perf_counter() - start:.2f} s\n")

    print(f"{'grammar build':<14} {'min ms':>7} {'median ms':>10} {'max ms':>8}")
    for name, options in BUILDS.items():
        spec = parse_constraints(options)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            Constraint(spec, tokenizer, vocab)
            times.append((time.perf_counter() - start) * 1000)
        print(f"{name:<14} {min(times):>7.2f} {statistics.median(times):>10.2f} "
              f"{max(times):>8.2f}")

    wall: dict[str, list[float]] = {name: [] for name in GENERATION}
    cpu: dict[str, list[float]] = {name: [] for name in GENERATION}
    texts: dict[str, list[int]] = {}
    for _ in range(args.repeat):
        for name, options in GENERATION.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            generation = llm.generate_sync(PROMPT, max_tokens=args.tokens, cache=False,
                                           return_details=True, top_logprobs=0, **options)
            wall[name].append((time.perf_counter() - start) / args.tokens * 1000)
            cpu[name].append((time.process_time() - start_cpu) / args.tokens * 1000)
            assert len(generation.tokens) == args.tokens, (name, generation.finish_reason)
            texts[name] = [t.token_id for t in generation.tokens]

    base_wall, base_cpu = statistics.median(wall["none"]), statistics.median(cpu["none"])
    print(f"\ngreedy, {args.tokens} tokens, median of {args.repeat} runs")
    print(f"{'constraint':<10} {'wall ms/tok':>11} {'ratio':>6} {'cpu ms/tok':>11} {'ratio':>6} "
          f"{'own work ms/tok':>15} {'share':>6}")
    for name in GENERATION:
        work = _own_work(llm, tokenizer, vocab, name, texts[name]) if name != "none" else 0.0
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<10} {w:>11.2f} {w / base_wall:>6.3f} {c:>11.2f} {c / base_cpu:>6.3f} "
              f"{work:>15.3f} {work / base_wall * 100:>5.2f}%")


def _own_work(llm, tokenizer, vocab: int, name: str, token_ids: list[int]) -> float:
    """ms per token that the constraint itself costs: replays the tokens (best of 5)."""
    from lmql_nb.constraints.stops import new_stop

    spec = parse_generate_options(None, **GENERATION[name]).constraint
    constraint = Constraint(spec, tokenizer, vocab) if spec.shaped else None
    logits = np.random.default_rng(0).standard_normal((1, vocab), dtype=np.float32)
    pieces = [tokenizer.decode([i]) for i in token_ids]
    best = float("inf")
    for _ in range(5):
        matcher = constraint.start() if constraint else None
        text = ""
        start = time.perf_counter()
        for token_id, piece in zip(token_ids, pieces):
            if matcher is not None:
                matcher.mask_(logits[0])
                matcher.advance(token_id)
            text += piece
            new_stop(text, len(piece), spec)
        best = min(best, (time.perf_counter() - start) / len(token_ids) * 1000)
    return best

if __name__ == "__main__":
    main()
