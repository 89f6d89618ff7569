#!/usr/bin/env bash
# Set up justrl in ./.venv on a fresh machine (CPU). `--dev` adds what the tests need.
# Installs exactly the packages a lock records, checked against their sha256 hashes:
# locks/main-base.txt, or locks/main.txt with --dev (made by scripts/lock.sh; the first is a subset of
# the second at the same versions), so the two give the same version of every package they share,
# in either order, in a new venv or in one that exists. The locks pin the CPU build of torch
# (2.13.0+cpu), so nothing pulls a CUDA build. justrl itself goes in last, editable, without
# resolving again (--no-deps); `pip check` and `justrl doctor` then check the environment (doctor
# fails on a known-bad leftover, e.g. a kernels release that this transformers cannot import).
# On a GPU machine, install the torch that matches your CUDA into your environment instead,
# then `pip install -e .[verl]` (or `.[vllm]`).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=locks/main-base.txt
[ "${1:-}" = "--dev" ] && lock=locks/main.txt
python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q --upgrade pip
$py -m pip install -q --require-hashes --no-deps -r "$lock"
$py -m pip install -q --no-deps -e .
$py -m pip check >/dev/null || { $py -m pip check; exit 1; }
.venv/bin/justrl doctor -q >/dev/null || { .venv/bin/justrl doctor; exit 1; }
