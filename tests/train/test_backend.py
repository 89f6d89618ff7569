"""The recipe's rollout_backend: which generator the trainer gets, and its per-step duties."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from justrl.data import toy
from justrl.errors import BackendUnavailable
from justrl.generate.hf import HFGenerator
from justrl.generate.static import StaticCacheGenerator
from justrl.recipe import load
from justrl.train.backend import (
    after_update,
    before_update,
    make_rollout_generator,
    peak_memory_metrics,
    start_peak_memory,
)


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
    class Engine:  # the two duties of justrl.generate.colocate.ColocatedVLLM (tested with real vLLM)
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


def test_top_p_below_one_with_vllm_warns_once_naming_the_bias(monkeypatch, caplog) -> None:
    import justrl.train.backend as rollout_backend

    monkeypatch.setattr(rollout_backend, "_warned_truncated_sampling", False)
    with caplog.at_level("WARNING", logger="justrl"):
        assert not rollout_backend.warn_truncated_sampling(1.0)  # the paper's top_p: nothing to say
        assert rollout_backend.warn_truncated_sampling(0.9)
        assert not rollout_backend.warn_truncated_sampling(0.9)  # once
    warnings = [r.getMessage() for r in caplog.records if "top_p=0.9" in r.getMessage()]
    assert len(warnings) == 1 and "importance ratio" in warnings[0] and "biased" in warnings[0]


def test_validation_batches_spend_the_rollout_batchs_cache_budget() -> None:
    from justrl.recipe import PAPER, load
    from justrl.train.backend import sized_for_validation, validation_batch_size

    # the paper: 1,024 + 31,744 validation tokens against 1,024 + 15,360 rollout tokens
    assert validation_batch_size(PAPER, 64) == 64 * 16384 // 32768 == 32
    toy = load("toy")  # validation as long as the rollouts: the same batches as before
    assert validation_batch_size(toy, 64) == 64
    assert validation_batch_size(PAPER, 1) == 1

    class Sized:
        batch_size = 64

    generator = Sized()
    with sized_for_validation(generator, PAPER):
        assert generator.batch_size == 32
    assert generator.batch_size == 64
    with sized_for_validation(object(), PAPER):  # vLLM: no batch size to set
        pass
