"""lmql_nb against LMQL 0.7.3 on the same weights, and lmql_nb's caches and start-up.

    python benchmarks/bench_lmql.py [--repeat 3]

LMQL 0.7.3 runs in its own virtual environment, which this script creates on first use
in the user cache (`pip install lmql[hf]==0.7.3` with torch 2.13.0 and the last
transformers 4.x, which LMQL 0.7.3 works with, and llama-cpp-python for LMQL's llama.cpp
backend), pointed at the embedded model's converted transformers folder. LMQL is timed with its defaults on prompts it has not seen: its
`cache=False` path is far slower and would flatter us. lmql_nb is timed with `cache=False`
(every call computes) on the same workloads, in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import venv
from pathlib import Path

import lmql_nb
from lmql_nb.backends.transformers.conversion import embedded_folder
from lmql_nb.core.paths import cache_dir

from timing import timed
from workloads import CONCURRENT, LONG_PROMPT, PROMPT, VALUES

HERE = Path(__file__).resolve().parent
LMQL_REQUIREMENTS = ["torch==2.13.0", "lmql[hf]==0.7.3", "transformers>=4.50,<5", "accelerate",
                     # LMQL's llama.cpp backend (lmql_models.py adapts it to 0.3's API): an
                     # sdist, compiled on install (about 10 minutes on 2 cores) unless pip's
                     # cache holds the wheel it built for lmql_nb's own llama.cpp extra
                     "llama-cpp-python==0.3.36"]


def lmql_python() -> Path:
    """The LMQL 0.7.3 environment's interpreter, creating the environment if needed (an
    environment made from a shorter requirements list gets only what it lacks)."""
    folder = cache_dir("bench") / "lmql-0.7.3"
    python = folder / "bin" / "python"
    marker = folder / "installed.json"
    installed = json.loads(marker.read_text()) if marker.is_file() else None
    if installed == LMQL_REQUIREMENTS:
        return python
    if isinstance(installed, list) and set(installed) <= set(LMQL_REQUIREMENTS):
        missing = [r for r in LMQL_REQUIREMENTS if r not in installed]
        print(f"adding {missing} to LMQL 0.7.3's environment (once)...", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *missing], check=True)
    else:
        print("creating LMQL 0.7.3's environment (once; a few minutes, 10 more if "
              "llama-cpp-python compiles)...", file=sys.stderr)
        venv.create(folder, with_pip=True, clear=True)
        for requirement in (LMQL_REQUIREMENTS[:1], LMQL_REQUIREMENTS[1:]):  # CPU torch first
            subprocess.run([str(python), "-m", "pip", "install", "-q", *requirement],
                           check=True)
    marker.write_text(json.dumps(LMQL_REQUIREMENTS))
    return python


def run_worker(worker: str, folder: str, repeat: int, gguf: str | None = None) -> dict:
    """Run one of the LMQL 0.7.3 worker scripts beside this file in LMQL's environment on
    the model `folder` (float32 transformers) or, given `gguf`, on that GGUF file through
    LMQL's llama.cpp backend with the folder's tokenizer; the timings it prints as its
    last line (JSON)."""
    out = subprocess.run([str(lmql_python()), str(Path(__file__).parent / worker), folder,
                          str(repeat), *([gguf] if gguf else [])], capture_output=True, text=True,
                         cwd=Path(__file__).parent, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"LMQL 0.7.3 failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_lmql(folder: str, repeat: int) -> dict:
    out = subprocess.run([str(lmql_python()), str(HERE / "lmql_worker.py"), folder, str(repeat)],
                         capture_output=True, text=True, cwd=HERE, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"LMQL 0.7.3 failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_new_process(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = str(embedded_folder())
    llm = lmql_nb.model("local:gemma-3-270m")
    llm.generate_sync("warm up", max_tokens=1, cache=False)

    runs = itertools.count()  # a prompt no run has seen, every run
    ours = {
        "greedy": timed(lambda: llm.generate_sync(f"{next(runs)}. {PROMPT}", max_tokens=32,
                                                  cache=False), args.repeat),
        "score": timed(lambda: llm.score_sync(f"{next(runs)}. {LONG_PROMPT}", VALUES,
                                              cache=False), args.repeat),
        "gather": timed(lambda: asyncio.run(_gather(llm, next(runs))), args.repeat),
    }
    theirs = run_lmql(folder, args.repeat)

    rows = [("greedy 32 tokens", "greedy", None),
            ("score 10 values, 400-token prompt", "score", 1 / 5),
            ("8 concurrent generates x 16 tokens", "gather", 1 / 3)]
    print(f"{'task':<36} {'lmql_nb':>9} {'LMQL 0.7.3':>11}  {'ratio':>6}  target")
    for task, key, target in rows:
        ratio = ours[key] / theirs[key]
        goal = f"<= {target:.2f}x" if target else ""
        print(f"{task:<36} {ours[key]:>8.3f}s {theirs[key]:>10.3f}s  {ratio:>5.2f}x  {goal}")
    print(f"LMQL 0.7.3 scores after {PROMPT!r}: {theirs['paris']}")

    llm.generate_sync(PROMPT, max_tokens=8)  # remembered in memory and on disk
    memory = timed(lambda: llm.generate_sync(PROMPT, max_tokens=8), 20)
    disk = in_new_process(
        "import time, lmql_nb\n"
        "m = lmql_nb.model('local:gemma-3-270m')\n"
        "started = time.perf_counter()\n"
        f"m.generate_sync({PROMPT!r}, max_tokens=8)\n"
        "print(time.perf_counter() - started)")
    importing = statistics.median(in_new_process(
        "import time\nstarted = time.perf_counter()\nimport lmql_nb\n"
        "print(time.perf_counter() - started)") for _ in range(5))
    print(f"\n{'repeated call, from memory':<36} {memory * 1000:>8.2f} ms   target < 1 ms")
    print(f"{'repeated call, from disk (new proc)':<36} {disk * 1000:>8.2f} ms   target < 50 ms")
    print(f"{'import lmql_nb':<36} {importing * 1000:>8.1f} ms   target < 300 ms")


async def _gather(llm, run: int):
    return await asyncio.gather(*[llm.generate(f"{run}. {p}", max_tokens=16, cache=False)
                                  for p in CONCURRENT])


if __name__ == "__main__":
    main()
