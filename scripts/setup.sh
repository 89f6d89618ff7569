#!/usr/bin/env bash
# Set up justrl in ./.venv on a fresh machine (CPU). `--dev` adds what the tests need.
# Installs the pinned CPU build of torch (2.13.0) first, so that nothing pulls a CUDA build.
# On a GPU machine, install the torch that matches your CUDA into your environment instead,
# then `pip install -e .[verl]` (or `.[vllm]`).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${extras}"
