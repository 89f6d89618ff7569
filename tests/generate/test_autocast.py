"""Every generation backend under the trainer's CUDA precision: float32 master weights, bfloat16 autocast.

The trainer builds its generator with ``autocast_dtype=pick_autocast("bfloat16", ...)`` over a
float32 policy (``train/devices.py``); this runs the same configuration on the CPU, where
bfloat16 works too, so a dtype clash in a rollout path (K and V of different dtypes in a static
cache) shows up in the CPU suite.
"""

from __future__ import annotations

import pytest
import torch

from justrl.data import toy
from justrl.generate.factory import make_hf_generator
from justrl.generate.hf import SamplingParams
from justrl.train.devices import pick_autocast

AUTOCAST = pick_autocast("bfloat16", torch.device("cpu"))


def _prompts(tokenizer) -> list[str]:
    return [toy.chat_prompt(tokenizer, t) for t in ("1+2+3=?", "12+34=? and more", "9=?")]


@pytest.fixture
def float32_policy():
    tokenizer = toy.build_tokenizer()
    config = toy.ToyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=1)
    return toy.build_model(tokenizer, config, seed=1), tokenizer


@pytest.mark.parametrize("backend", ["hf", "hf-static"])
def test_every_backend_samples_under_bfloat16_autocast(float32_policy, backend) -> None:
    model, tokenizer = float32_policy
    assert torch.bfloat16 == AUTOCAST and next(model.parameters()).dtype == torch.float32
    generator = make_hf_generator(model, tokenizer, backend, batch_size=4, autocast_dtype=AUTOCAST)
    if backend == "hf-static":
        generator.length_bucket, generator.check_every = 16, 4
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    out = generator.generate(_prompts(tokenizer), params, seeds=[1, 2, 3])
    assert len(out) == 3 and all(len(c.token_ids) == len(c.logprobs) >= 1 for c in out)
    assert all(lp <= 0.0 for c in out for lp in c.logprobs)
    # the policy that is trained keeps its float32 weights
    assert next(model.parameters()).dtype == torch.float32
    # same seeds, same samples
    again = generator.generate(_prompts(tokenizer), params, seeds=[1, 2, 3])
    assert [c.token_ids for c in again] == [c.token_ids for c in out]


def test_static_cache_holds_keys_and_values_in_one_dtype(float32_policy) -> None:
    model, tokenizer = float32_policy
    generator = make_hf_generator(model, tokenizer, "hf-static", batch_size=4, autocast_dtype=AUTOCAST)
    generator.length_bucket = 16
    generator.generate(_prompts(tokenizer), SamplingParams(temperature=0.0, max_new_tokens=4))
    layers = [layer for cache in generator._caches.values() for layer in cache.layers]
    assert layers and all(layer.keys.dtype == layer.values.dtype == torch.bfloat16 for layer in layers)


def test_the_bfloat16_copy_is_refreshed_in_place(float32_policy) -> None:
    from justrl.train.backend import after_update

    model, tokenizer = float32_policy
    generator = make_hf_generator(model, tokenizer, "hf-static", batch_size=4, autocast_dtype=AUTOCAST)
    copy = generator.model
    assert copy is not model and next(copy.parameters()).dtype == torch.bfloat16
    addresses = [p.data_ptr() for p in copy.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.25)
    assert not torch.equal(next(copy.parameters()).float(), next(model.parameters()).to(torch.bfloat16).float())
    after_update(generator, model)  # what the trainer calls after each optimizer step
    assert [p.data_ptr() for p in copy.parameters()] == addresses
    for (name, p), q in zip(copy.named_parameters(), model.parameters()):
        assert torch.equal(p, q.to(torch.bfloat16)), name


def test_float32_sampling_uses_the_policy_itself(float32_policy) -> None:
    model, tokenizer = float32_policy
    assert make_hf_generator(model, tokenizer, "hf", autocast_dtype=None).model is model


def test_the_judges_path_bfloat16_weights_through_hf_static(float32_policy, tmp_path) -> None:
    """The judge (and ``justrl eval --backend hf`` on a GPU) loads bfloat16 weights and builds hf-static."""
    from justrl.generate.factory import load_hf_generator
    from justrl.generate.static import StaticCacheGenerator

    model, tokenizer = float32_policy
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = load_hf_generator(str(tmp_path), device="cpu", dtype="bfloat16", backend="hf-static")
    assert isinstance(generator, StaticCacheGenerator) and generator.model is generator.policy
    generator.length_bucket = 16
    out = generator.generate(_prompts(tokenizer), SamplingParams(temperature=0.0, max_new_tokens=6))
    assert len(out) == 3 and all(c.token_ids for c in out)
