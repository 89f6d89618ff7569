"""Colocated vLLM rollouts (``rollout_backend=vllm``): one in-process engine on the training device.

The trainer alternates two phases on one device, as TRL's colocate mode and verl's hybrid engine do:

1. rollouts: the engine is awake and samples with the current policy's weights;
2. the update: the engine sleeps (on CUDA, ``LLM.sleep(level=2)`` frees its weights and KV cache
   for the optimizer), and after the update it wakes with the policy's new weights.

Weight loading uses vLLM's in-place reload for RL (``reload_weights`` on each worker, reached
through ``LLM.collective_rpc``): it takes checkpoint-format ``(name, tensor)`` pairs, i.e. the
policy's own ``state_dict()`` names, and re-runs vLLM's layer-wise loading and post-processing, so
packed layers (``qkv_proj``, ``gate_up_proj``) are rebuilt correctly. (Calling the model's
``load_weights`` directly fails on packed layers once the model has been processed.) The engine
core runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so the tensors are handed over by
reference, not serialised.

What runs where:

- rollouts, log-probs, the weight reload and the prefix-cache reset run with vLLM's CPU build too
  (tests/train/test_vllm_rollouts.py runs the whole rollout -> update -> reload -> rollout cycle);
- sleep and wake need CUDA (vLLM's CPU worker ignores them): on a CPU this class keeps a stand-in
  that only records the phase (:attr:`events`), so the same code path is exercised.

Log-probs come from ``logprobs_mode="processed_logprobs"``: after temperature and top-p. With
``top_p == 1`` (the recipe's rollout setting) that is exactly :mod:`justrl.generate.hf`'s convention
(``softmax(logits / temperature)``), the quantity the trainer recomputes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from justrl import logs
from justrl.generate.hf import Completion, SamplingParams
from justrl.generate.vllm import build_sampling_params, import_vllm, parse_output

log = logs.get(__name__)


class ColocatedVLLM:
    """A :class:`~justrl.generate.hf.Generator` over one in-process vLLM engine that follows the policy.

    Args:
        model_path: the policy's folder (or hub id) the engine starts from.
        device_type: ``"cuda"`` (sleep/wake for real) or ``"cpu"`` (vLLM's CPU build; sleep/wake
            are recorded only).
        dtype: the engine's weights' dtype ("bfloat16" on a GPU); the policy's float32 master
            weights are cast to it when loaded.
        max_model_len: prompt + response tokens the engine must hold.
        gpu_memory_utilization: share of the GPU the engine may take while awake (the training
            state must fit beside it).
        seed, enforce_eager: passed to ``vllm.LLM``.
        llm: an already built engine (tests).
    """

    def __init__(self, model_path: str, *, device_type: str, dtype: str = "auto", max_model_len: int,
                 gpu_memory_utilization: float = 0.3, seed: int = 0, enforce_eager: bool = False,
                 llm: Any = None, **engine_kwargs: Any) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.vllm = import_vllm()
        self.sleep_mode = device_type == "cuda"
        if llm is None:
            llm = self.vllm.LLM(
                model=model_path, dtype=dtype, max_model_len=max_model_len, seed=seed,
                gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                enable_sleep_mode=self.sleep_mode, logprobs_mode="processed_logprobs", **engine_kwargs)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        eos = self.tokenizer.eos_token_id
        self.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        self.asleep = False
        self.events: list[str] = []
        """Phases in order: ``sleep``, ``wake``, ``load`` (the CPU stand-in records them too)."""

    # --- the Generator protocol -------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[Completion]:
        ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        return self.generate_from_ids(ids, params, seeds)

    def generate_from_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
                          seeds: Sequence[int] | None = None) -> list[Completion]:
        if seeds is None:
            seeds = [params.seed + i for i in range(len(prompt_ids))]
        if len(seeds) != len(prompt_ids):
            raise ValueError(f"{len(seeds)} seeds for {len(prompt_ids)} prompts")
        if self.asleep:
            self.wake()
        requests = build_sampling_params(self.vllm, params, seeds, logprobs=True)
        token_prompts = [{"prompt_token_ids": [int(t) for t in ids]} for ids in prompt_ids]
        outputs = self.llm.generate(token_prompts, sampling_params=requests, use_tqdm=False)
        if len(outputs) != len(prompt_ids):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompt_ids)} prompts")
        return [parse_output(o) for o in outputs]

    # --- following the policy ---------------------------------------------------------------------

    def sleep(self) -> None:
        """Free the engine's device memory for the update (weights and KV cache: level 2)."""
        if self.asleep:
            return
        if self.sleep_mode:
            self.llm.sleep(level=2)
        self.asleep = True
        self.events.append("sleep")

    def wake(self) -> None:
        """Wake without new weights (only right after :meth:`sleep` when nothing was trained)."""
        if self.sleep_mode:
            self.llm.wake_up()
        self.asleep = False
        self.events.append("wake")

    def load_weights(self, model: torch.nn.Module) -> None:
        """Give the engine the policy's current weights, waking it if it sleeps.

        On CUDA the weights' memory is woken first, the weights are reloaded in place, then the KV
        cache is woken (TRL's and verl's order, so both never hold a stale cache together).
        """
        was_asleep = self.asleep
        if was_asleep and self.sleep_mode:
            if torch.cuda.is_available():
                # the update's freed blocks are still held by PyTorch's allocator: hand them back
                # to the driver before vLLM asks it for its weights' memory (TRL does the same)
                torch.cuda.empty_cache()
            self.llm.wake_up(tags=["weights"])
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": streamed_weights(model, self.engine_dtype()),
                                                          "is_checkpoint_format": True})
        if was_asleep and self.sleep_mode:
            self.llm.wake_up(tags=["kv_cache"])
        self.llm.reset_prefix_cache()  # cached prompt blocks were computed by the old weights
        self.asleep = False
        self.events.append("load")

    def engine_dtype(self) -> torch.dtype:
        dtype = getattr(getattr(self.llm.llm_engine, "model_config", None), "dtype", None)
        return dtype if isinstance(dtype, torch.dtype) else torch.bfloat16

    def close(self) -> None:
        """Shut the engine down (frees its device memory and any helper processes)."""
        shutdown = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            shutdown.shutdown()
        self.llm = None


def streamed_weights(model: torch.nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor in dtype)`` for each of ``model``'s weights, cast one at a time as vLLM reads
    them (one weight's copy alive at a time, not the whole model's: ~3.5 GB for a 1.5B model)."""
    for name, tensor in model.state_dict().items():
        yield name, tensor.detach().to(dtype)
