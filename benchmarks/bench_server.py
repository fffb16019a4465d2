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

Beside rows per second, each line gives the CPU seconds one row cost: the client's
process and the server's process tree (vLLM's API server and engine core) together,
from /proc, so a figure from a busy machine can still be compared per core. The
"engine" line is the floor under both: the CPU seconds per row of the engine's own
scoring pass (`score_rows`) for 1 row and for 8 rows at once, as in process scores them
(the prompt's last position projected onto the vocabulary) and as an echo of prompt
log-probabilities must (every prompt position projected: `score_prefix`).
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
from typing import Optional

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


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its descendants
    (Linux: read from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return sum(times.get(p, 0.0) for p in tree)


def rows_per_second(llm, prompts, repeat: int,
                    server_pid: Optional[int] = None) -> tuple[float, float]:
    """(rows per second, CPU seconds per row: this process and the server's tree)."""
    cpu = time.process_time() + (tree_cpu_seconds(server_pid) if server_pid else 0.0)
    seconds = timed(lambda: llm.score_many_sync(prompts, SENTIMENTS, cache=False,
                                                progress=False), repeat, warm_up=False)
    cpu = time.process_time() + (tree_cpu_seconds(server_pid) if server_pid else 0.0) - cpu
    return len(prompts) / seconds, cpu / (len(prompts) * repeat)


def engine_floor(local, prompts) -> dict:
    """CPU seconds per row of one `score_rows` pass over 1 and over 8 rows, without and
    with the prompts' own tokens scored (the best of 3 each)."""
    from lmql_nb.backends.engine.model import ScoreRow

    local.backend.load()
    model, tokenizer = local.backend._model, local.backend.tokenizer
    floor = {}
    for count in (1, 8):
        rows = []
        for i, prompt in enumerate(prompts[:count]):
            ids = tuple(tokenizer.encode_prompt(prompt))
            rows += [ScoreRow(i, j, ids, tokenizer.encode(value))
                     for j, value in enumerate(SENTIMENTS)]
        for echo in (False, True):
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                model.score_rows(rows, score_prefix=echo)
                best = min(best, time.process_time() - started)
            floor[count, echo] = best / count
    return floor


def bench_server(label: str, base_url: str, prompts, expected, in_flight, repeat,
                 server_pid: Optional[int]) -> tuple[dict, dict]:
    """Rows per second and CPU seconds per row of each configuration."""
    results, cpu = {}, {}
    baseline = lmql_nb.model("openai/gemma", base_url=base_url, timeout=600,
                             max_concurrency=1, batch_rows=1)
    warm = baseline.score_many_sync(prompts[:8], SENTIMENTS, cache=False, progress=False)
    for row, want in zip(warm, expected[:8]):  # the server's numbers are the oracle's
        np.testing.assert_allclose(row.scores(), want, atol=1e-4)
    one = "1 (one row per request)"
    results[one], cpu[one] = rows_per_second(baseline, prompts, repeat, server_pid)
    print(f"{label:>14}  1 in flight, 1 row/request: {results[one]:7.2f} rows/s, "
          f"{cpu[one]:.3f} CPU s/row", flush=True)
    for count in in_flight:
        llm = lmql_nb.model("openai/gemma", base_url=base_url, timeout=600,
                            max_concurrency=count)
        results[str(count)], cpu[str(count)] = rows_per_second(llm, prompts, repeat,
                                                                server_pid)
        print(f"{label:>14}  {count:>2} in flight, 8 rows/request: "
              f"{results[str(count)]:7.2f} rows/s, {cpu[str(count)]:.3f} CPU s/row",
              flush=True)
    return results, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--vllm-url", help="a vLLM server already running on the same "
                        "folder (http://127.0.0.1:PORT) instead of starting one")
    parser.add_argument("--vllm-pid", type=int, help="that server's PID (for its CPU time)")
    args = parser.parse_args()
    folder = embedded_folder()
    prompts = reviews(args.rows)
    local = lmql_nb.model(f"local:{folder}")
    expected = [r.scores() for r in local.score_many_sync(prompts[:8], SENTIMENTS,
                                                          cache=False, progress=False)]
    in_process, in_process_cpu = rows_per_second(local, prompts, args.repeat)
    print(f"{'in process':>14}  score_many: {in_process:7.2f} rows/s, "
          f"{in_process_cpu:.3f} CPU s/row", flush=True)
    table = {"in process": {"score_many": in_process}}
    cpu_table = {"in process": {"score_many": in_process_cpu}}
    floor = engine_floor(local, prompts)
    print(f"{'engine':>14}  CPU s/row of one pass: in process {floor[1, False]:.3f} (1 row), "
          f"{floor[8, False]:.3f} (8 rows); echo {floor[1, True]:.3f} (1 row), "
          f"{floor[8, True]:.3f} (8 rows)", flush=True)
    del local  # the servers get the machine's memory and cores
    if not args.skip_serve:
        server = LmqlServe(folder)
        try:
            table["lmql_nb serve"], cpu_table["lmql_nb serve"] = bench_server(
                "lmql_nb serve", server.base_url, prompts, expected, args.in_flight,
                args.repeat, server.process.pid)
        finally:
            server.stop()
    if args.vllm_url:
        table["vLLM"], cpu_table["vLLM"] = bench_server(
            "vLLM", f"{args.vllm_url.rstrip('/')}/v1", prompts, expected, args.in_flight,
            args.repeat, args.vllm_pid)
    elif not args.skip_vllm:
        vllm = VLLMServer(folder, "gemma")
        try:
            vllm.wait_ready()
            table["vLLM"], cpu_table["vLLM"] = bench_server(
                "vLLM", vllm.base_url, prompts, expected, args.in_flight, args.repeat,
                vllm.process.pid)
        finally:
            vllm.stop()
    print(f"\n{args.rows} rows x {len(SENTIMENTS)} values, rows/s (median of "
          f"{args.repeat}) [CPU s/row]; {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.2f}")
    for label, row in table.items():
        cells = ", ".join(f"{k}: {v:.2f} [{cpu_table[label][k]:.3f}]" for k, v in row.items())
        print(f"  {label}: {cells}")
    one = "1 (one row per request)"
    for label in ("lmql_nb serve", "vLLM"):
        if label in table:
            row, cpu = table[label], cpu_table[label]
            best = max((k for k in row if k != one), key=row.__getitem__)
            print(f"  {label}: best ({best} in flight) {row[best] / row[one]:.1f}x "
                  f"one-at-a-time (target >= 3x), {row[best] / in_process:.2f}x in process "
                  f"(target >= 1); per CPU second {cpu[one] / cpu[best]:.1f}x one-at-a-time, "
                  f"{in_process_cpu / cpu[best]:.2f}x in process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
