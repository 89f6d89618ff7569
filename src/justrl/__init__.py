"""justrl: the JustRL recipe (plain GRPO for math reasoning) as a toolkit.

The package is a ground floor (``recipe``, ``grpo``, ``errors``, ``config``, ``io``, ``logs``) and
wings, each a folder whose ``__init__`` says what comes in, what goes out and which wings it may
import: ``data``, ``verifiers``, ``generate``, ``dynamics``, ``train``, ``evaluate``,
``verl_engine``, ``integrations`` and ``cli`` (the README's "Map of the code" reads them in order).

Module paths from before the wings (``justrl.trainer``, ``justrl.grading``, ...) still import, for
one release, with a :class:`DeprecationWarning` naming the new path: :data:`MOVED` lists them all.
``justrl.verl_reward`` is a stable public name (rendered verl configs load
``pkg://justrl.verl_reward``) and imports without a warning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

__version__ = "0.1.0"

MOVED: dict[str, str] = {
    "justrl.problems": "justrl.data.problems",
    "justrl.benchmarks": "justrl.data.benchmarks",
    "justrl.release_data": "justrl.data.release_data",
    "justrl.toy": "justrl.data.toy",
    "justrl.generation": "justrl.generate.hf",
    "justrl.static_generation": "justrl.generate.static",
    "justrl.vllm_backend": "justrl.generate.vllm",
    "justrl.vllm_colocate": "justrl.generate.colocate",
    "justrl.context_window": "justrl.generate.context_window",
    "justrl.model_files": "justrl.generate.model_files",
    "justrl.trainer": "justrl.train.loop",
    "justrl.rollouts": "justrl.train.rollouts",
    "justrl.logprobs": "justrl.train.logprobs",
    "justrl.micro_batches": "justrl.train.micro_batches",
    "justrl.runs": "justrl.train.runs",
    "justrl.devices": "justrl.train.devices",
    "justrl.rollout_backend": "justrl.train.backend",
    "justrl.ablations": "justrl.train.ablations",
    "justrl.metrics": "justrl.dynamics.metrics",
    "justrl.plots": "justrl.dynamics.plots",
    "justrl.budget": "justrl.dynamics.budget",
    "justrl.grading": "justrl.evaluate.grading",
    "justrl.judge": "justrl.evaluate.judge",
    "justrl.ray_eval": "justrl.evaluate.ray_workers",
    "justrl.compare": "justrl.evaluate.compare",
    "justrl.compare_report": "justrl.evaluate.compare_report",
    "justrl.data_export": "justrl.verl_engine.data_export",
    "justrl.folders": "justrl.io",
    "justrl.verl_reward": "justrl.verl_engine.reward",
}
"""Old module path -> the module that now holds it (the same module object, not a copy)."""

STABLE_ALIASES = frozenset({"justrl.verl_reward"})
"""Old paths that stay public names: they import without a warning."""


class _MovedModuleLoader(importlib.abc.Loader):
    """Hands out the module at its new path under the old name (``sys.modules`` then holds both)."""

    def create_module(self, spec: importlib.machinery.ModuleSpec):
        target = MOVED[spec.name]
        if spec.name not in STABLE_ALIASES:
            warnings.warn(f"{spec.name} moved to {target}; the old path goes away in the next release",
                          DeprecationWarning, stacklevel=4)
        return importlib.import_module(target)

    def exec_module(self, module) -> None:  # the target module has run already
        return None


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader())


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
