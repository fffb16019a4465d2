"""Peak memory of `lmql_nb serve` while it echoes one long prompt's log-probabilities.

    python benchmarks/bench_echo_memory.py [--model local:gemma-3-270m] [--tokens 3000]
    python benchmarks/bench_echo_memory.py --model local:FOLDER --tokens 1000   # any model

Starts `python -m lmql_nb serve MODEL`, sends a short echo (the baseline: the model
loaded and one pass run), then one /v1/completions request with `echo=true,
max_tokens=0` over a prompt of about `--tokens` tokens: once with `logprobs=0` (the
log-probability of each prompt token) and once with `logprobs=5` (and the 5 best
alternatives at each position). Before each request it resets the server's peak
resident memory (/proc/PID/clear_refs), after it reads it (VmHWM in /proc/PID/status) and
prints its growth over the baseline. Without a
bound, the vocabulary projected at every position is a (prompt length x vocabulary)
float32 array (about 3 GiB for 3000 tokens of Gemma 3's 262,144 tokens) and more for its
log-softmax; with the bound (`MAX_LOGITS_PER_BATCH` in
lmql_nb/backends/transformers/torch_model.py) it is a chunk of positions at a time.

Measured on the embedded Gemma 3 270M, 2992 tokens (7 Dec 2026, 2-core machine shared
with three others): before the bound (load average 1.0-3.0), +6344 MiB with logprobs=0
and +6482 MiB with logprobs=5 (37 s, 56 s); with it (load 3.2-3.3), +476 MiB and
+646 MiB (60 s, 70 s: the projection is the same work, the machine was busier). The
baseline, the model loaded, was 1711 MiB both times. Side by side in one process
(999 prompt positions, `score_rows` with `score_prefix`, load 6.4-6.7): chunks of 128
positions 20.3 s and 23.6 s, the same code in one chunk 20.9 s and 21.0 s, the
projection at once as before the bound 29.3 s and 33.5 s; the scores identical.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY = re.compile(r"serving (\S+) at (http://\S+)")


def peak_mib(pid: int) -> float:
    """The process's peak resident memory so far, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def reset_peak(pid: int) -> None:
    """Start the process's peak resident memory over from its current one."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="local:gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=3000)
    args = parser.parse_args()
    process = subprocess.Popen([sys.executable, "-m", "lmql_nb", "serve", args.model,
                                "--name", "m", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:
            match = READY.search(line)
            if match:
                url = match.group(2)
                break
        assert url, "the server did not start"
        client = httpx.Client(base_url=url, timeout=1800)

        def echo(prompt: object, top: int) -> dict:
            body = {"model": "m", "prompt": prompt, "echo": True, "max_tokens": 0,
                    "logprobs": top}
            answer = client.post("/completions", json=body)
            answer.raise_for_status()
            return answer.json()

        echo("The capital of France is Paris.", 5)
        base = peak_mib(process.pid)
        print(f"baseline peak RSS {base:.0f} MiB (model loaded, one short echo)")
        sentence = "The capital of France is Paris, and the river is quiet. "
        tokenized = httpx.post(url[:-3] + "/tokenize",
                               json={"model": "m", "prompt": sentence * args.tokens})
        tokenized.raise_for_status()
        ids = tokenized.json()["tokens"][:args.tokens]  # the prompt, as token ids
        for top in (0, 5):
            reset_peak(process.pid)
            start = time.perf_counter()
            answer = echo(ids, top)
            tokens = answer["usage"]["prompt_tokens"]
            peak = peak_mib(process.pid)
            print(f"echo of {tokens} tokens, logprobs={top}: peak RSS {peak:.0f} MiB "
                  f"(+{peak - base:.0f} MiB over the baseline), "
                  f"{time.perf_counter() - start:.1f} s")
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
