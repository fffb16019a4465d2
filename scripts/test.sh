#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests need it)" >&2
    exit 1
  fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q torch==2.13.0          # the CPU wheel; a bare 'torch' pulls CUDA
python -m pip install -q -e ".[all,dev]"

python -m pytest "$@"
