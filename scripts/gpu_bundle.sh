#!/usr/bin/env bash
# Build .whl/ (git-ignored): what benchmarks/gpu_suite.py needs on a GPU machine that has torch and
# transformers but reaches no package registry.
#
#   - the pure-Python wheels justrl's grading imports beyond such a machine's usual packages
#     (math-verify and its LaTeX parser; pyyaml, rich, numpy, pyarrow, sympy and tokenizers are
#     expected there already), built here as py3-none-any wheels so they install on any Python 3.
#
# Here (with a registry):    bash scripts/gpu_bundle.sh
# There, the one command (from the repository root, with .whl carried along):
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:src \
#       python3 benchmarks/gpu_suite.py --json "${OUT:-.}/gpu_suite.json"
#
# Environment: PYTHON (default python3) runs pip here. The suite reads MATH-500 from the copy
# packaged in src/justrl/data/files/benchmarks, which travels with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# One version of each (two of one name stop an offline install). These are the versions the
# project's tests run with; math-verify pins latex2sympy2_extended exactly.
WHEELS=(
  "math-verify==0.9.0"
  "latex2sympy2_extended==1.11.0"
  "antlr4-python3-runtime==4.9.3"
  "pylatexenc==2.10"
)

mkdir -p .whl
rm -f .whl/*.whl
"$PYTHON" -m pip wheel --quiet --no-deps --no-cache-dir --wheel-dir .whl "${WHEELS[@]}"
for wheel in .whl/*.whl; do
  case "$wheel" in
    *-none-any.whl) ;;
    *) echo "gpu_bundle: $wheel is not a pure-Python wheel" >&2; exit 1 ;;
  esac
done

du -sh .whl
ls -1 .whl
