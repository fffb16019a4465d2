"""Scoring a dataset against a server: rows per second of `score_many` against a real
vLLM server and against `python -m lmql_nb serve`, at 1, 4, 16 and 64 requests in
flight, next to the same work in process.

    python benchmarks/bench_server.py [--rows 256] [--repeat 1] [--skip-vllm]
    python benchmarks/bench_server.py --rows 32 --in-flight 1 4      # smoke run
    python benchmarks/bench_server.py --vllm-url http://127.0.0.1:8000   # a running vLLM

On the embedded Gemma 3 270M (float32 everywhere), `--rows` review prompts x 3 values
(benchmarks/workloads.py), result caches off. Per server: one-at-a-time requests (1 in
flight, one row per request: the baseline), then `max_concurrency` = 1, 4, 16, 64 with
`batch_rows` = 8 (the default: rows that wait for a slot leave together in one
/v1/completions request). vLLM runs from its own virtual environment
(scripts/vllm_server.py, `$LMQL_NB_VLLM_VENV`), started with the flags docs/scaling.md
gives; `lmql_nb serve` from this environment. Each server is started once, warmed up
with a few rows, and checked against the in-process numbers (within 1e-4) before it is
timed. Targets: at least 3x the rows per second of one-at-a-time requests, and no slower
than in process on the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import lmql_nb
from lmql_nb.backends.transformers.conversion import embedded_folder

from timing import timed
from workloads import SENTIMENTS, reviews

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from vllm_server import VLLMServer  # noqa: E402

READY = re.compile(r"serving (\S+) at (http://\S+)")


class LmqlServe:
    """`python -m lmql_nb serve FOLDER` on a free port, stopped by its PID."""

    def __init__(self, folder: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lmql_nb", "serve", f"local:{folder}", "--name", "gemma",
             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.base_url = ""
        found = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                match = READY.search(line)
                if match:
                    self.base_url = match.group(2)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(300):
            self.stop()
            raise RuntimeError("lmql_nb serve did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def rows_per_second(llm, prompts, repeat: int) -> float:
    seconds = timed(lambda: llm.score_many_sync(prompts, SENTIMENTS, cache=False,
                                                progress=False), repeat, warm_up=False)
    return len(prompts) / seconds


def bench_server(label: str, base_url: str, prompts, expected, in_flight, repeat) -> dict:
    results = {}
    baseline = lmql_nb.model("openai/gemma", base_url=base_url, timeout=600,
                             max_concurrency=1, batch_rows=1)
    warm = baseline.score_many_sync(prompts[:8], SENTIMENTS, cache=False, progress=False)
    for row, want in zip(warm, expected[:8]):  # the server's numbers are the oracle's
        np.testing.assert_allclose(row.scores(), want, atol=1e-4)
    results["1 (one row per request)"] = rows_per_second(baseline, prompts, repeat)
    print(f"{label:>14}  1 in flight, 1 row/request: "
          f"{results['1 (one row per request)']:7.2f} rows/s", flush=True)
    for count in in_flight:
        llm = lmql_nb.model("openai/gemma", base_url=base_url, timeout=600,
                            max_concurrency=count)
        results[str(count)] = rows_per_second(llm, prompts, repeat)
        print(f"{label:>14}  {count:>2} in flight, 8 rows/request: "
              f"{results[str(count)]:7.2f} rows/s", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--vllm-url", help="a vLLM server already running on the same "
                        "folder (http://127.0.0.1:PORT) instead of starting one")
    args = parser.parse_args()
    folder = embedded_folder()
    prompts = reviews(args.rows)
    local = lmql_nb.model(f"local:{folder}")
    expected = [r.scores() for r in local.score_many_sync(prompts[:8], SENTIMENTS,
                                                          cache=False, progress=False)]
    in_process = rows_per_second(local, prompts, args.repeat)
    print(f"{'in process':>14}  score_many: {in_process:7.2f} rows/s", flush=True)
    table = {"in process": {"score_many": in_process}}
    del local  # the servers get the machine's memory and cores
    if not args.skip_serve:
        server = LmqlServe(folder)
        try:
            table["lmql_nb serve"] = bench_server("lmql_nb serve", server.base_url, prompts,
                                                  expected, args.in_flight, args.repeat)
        finally:
            server.stop()
    if args.vllm_url:
        table["vLLM"] = bench_server("vLLM", f"{args.vllm_url.rstrip('/')}/v1", prompts,
                                     expected, args.in_flight, args.repeat)
    elif not args.skip_vllm:
        vllm = VLLMServer(folder, "gemma")
        try:
            vllm.wait_ready()
            table["vLLM"] = bench_server("vLLM", vllm.base_url, prompts, expected,
                                         args.in_flight, args.repeat)
        finally:
            vllm.stop()
    print(f"\n{args.rows} rows x {len(SENTIMENTS)} values, rows/s (median of "
          f"{args.repeat}); {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    for label, row in table.items():
        cells = ", ".join(f"{k}: {v:.2f}" for k, v in row.items())
        print(f"  {label}: {cells}")
    for label in ("lmql_nb serve", "vLLM"):
        if label in table:
            row = table[label]
            best = max(v for k, v in row.items() if k != "1 (one row per request)")
            print(f"  {label}: best {best / row['1 (one row per request)']:.1f}x one-at-a-time "
                  f"(target >= 3x), {best / in_process:.2f}x in process (target >= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
