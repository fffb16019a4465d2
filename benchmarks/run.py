"""Every benchmark, one after another, each in its own process:

    python benchmarks/run.py [--repeat 3]

bench_engine.py (lmql_nb against transformers by hand), bench_lmql.py (against LMQL
0.7.3, caches and start-up), bench_constraints.py (constrained against unconstrained
generation), bench_llamacpp.py (the llama.cpp backend against `llama_cpp.Llama` by
hand; needs llama-cpp-python), bench_query.py (a query program against the same calls
by hand and against LMQL 0.7.3), bench_score_many.py (scoring at dataset scale against
transformers and llama.cpp by hand and LMQL 0.7.3) and bench_flash_attention.py
(llama.cpp's flash attention on and off: distance from float32, speed) and
bench_server.py (score_many against vLLM and `lmql_nb serve` at 1-64 requests in flight). Each prints its own table of times
and ratios.
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_engine.py", "bench_lmql.py", "bench_constraints.py", "bench_llamacpp.py",
           "bench_query.py", "bench_score_many.py", "bench_flash_attention.py",
           "bench_server.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    failed = []
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        result = subprocess.run([sys.executable, str(HERE / script), "--repeat", str(args.repeat)],
                                cwd=HERE)
        if result.returncode:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
