#!/usr/bin/env bash
# Set up justrl in ./.venv on a fresh machine (CPU). `--dev` adds what the tests need.
# Every package comes at the version locks/main.txt records (a pip constraints file with hashes, made
# by scripts/lock.sh), with or without --dev, so the two give the same versions of every package
# they share, in either order, in a new venv or in one that exists. The lock pins the CPU build of
# torch (2.13.0+cpu), so nothing pulls a CUDA build. Last, `justrl doctor` checks the environment
# (it fails on a known-bad leftover, e.g. a kernels release that this transformers cannot import).
# On a GPU machine, install the torch that matches your CUDA into your environment instead,
# then `pip install -e .[verl]` (or `.[vllm]`).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
lock=locks/main.txt
python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q -c "$lock" --upgrade pip
$py -m pip install -q -c "$lock" torch
$py -m pip install -q -c "$lock" -e ".${extras}"
.venv/bin/justrl doctor -q >/dev/null || { .venv/bin/justrl doctor; exit 1; }
