"""The recipe's rollout_backend: which generator the trainer gets, and its per-step duties."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from justrl import toy
from justrl.errors import BackendUnavailable
from justrl.generation import HFGenerator
from justrl.recipe import load
from justrl.rollout_backend import (
    after_update,
    before_update,
    make_rollout_generator,
    peak_memory_metrics,
    start_peak_memory,
)
from justrl.static_generation import StaticCacheGenerator


@pytest.fixture(scope="module")
def policy():
    tokenizer = toy.build_tokenizer()
    return toy.build_model(tokenizer, toy.ToyModelConfig(hidden_size=32, intermediate_size=64), seed=0), tokenizer


@pytest.mark.parametrize("backend, kind", [("auto", HFGenerator), ("hf", HFGenerator),
                                           ("hf-static", StaticCacheGenerator)])
def test_transformers_backends_sample_with_the_policy_itself(policy, backend, kind) -> None:
    model, tokenizer = policy
    generator = make_rollout_generator(load("toy", {"rollout_backend": backend}), model, tokenizer, "unused",
                                       torch.device("cpu"), None)
    assert type(generator) is kind and generator.model is model
    before_update(generator)  # nothing to do: the generator reads the policy's own weights
    after_update(generator, model)


@pytest.mark.skip_ok
@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_what_to_install(policy) -> None:
    model, tokenizer = policy
    with pytest.raises(BackendUnavailable, match="vllm"):
        make_rollout_generator(load("toy", {"rollout_backend": "vllm"}), model, tokenizer, "unused",
                               torch.device("cpu"), None)


def test_a_separate_engine_sleeps_before_and_reloads_after_the_update(policy) -> None:
    class Engine:  # the two duties of justrl.vllm_colocate.ColocatedVLLM (tested with real vLLM)
        def __init__(self) -> None:
            self.calls: list[object] = []

        def sleep(self) -> None:
            self.calls.append("sleep")

        def load_weights(self, model) -> None:
            self.calls.append(model)

    engine, (model, _) = Engine(), policy
    before_update(engine)
    after_update(engine, model)
    assert engine.calls == ["sleep", model]


def test_peak_memory_is_reported_on_cuda_only() -> None:
    start_peak_memory(torch.device("cpu"))
    assert peak_memory_metrics(torch.device("cpu")) == {}
