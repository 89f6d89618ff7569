"""The CPU demo's pieces: tokenizer, task, model, cached warm start."""

from __future__ import annotations

import json

import pytest
import torch

from justrl import logs
from justrl.data import toy
from justrl.verifiers import dapo_reward

TINY = toy.ToyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1)


def test_tokenizer_round_trips_through_auto_tokenizer(tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = toy.build_tokenizer()
    toy.build_model(tokenizer, TINY).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|user|>12 + 3=?\nx<|assistant|>\\boxed{-15}<|endoftext|>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert loaded(text, add_special_tokens=False)["input_ids"] == ids
    assert loaded.decode(ids) == text
    assert loaded.decode(ids, skip_special_tokens=True) == "12 + 3=?\nx\\boxed{-15}"
    assert loaded.convert_ids_to_tokens(ids[-7:-1]) == ["\\boxed", "{", "-", "1", "5", "}"]  # digits alone
    prompt = loaded.apply_chat_template([{"role": "user", "content": "1+2+3=?"}],
                                        add_generation_prompt=True, tokenize=False)
    assert prompt == "<|user|>1+2+3=?<|assistant|>"
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.model_type == "qwen2" and model.config.vocab_size == len(loaded)


def test_task_split_is_fixed_disjoint_and_verifiable() -> None:
    train, test = toy.make_problems("train"), toy.make_problems("test")
    assert (len(train), len(test)) == (800, 200)
    assert not {p.id for p in train} & {p.id for p in test}
    assert [p.id for p in toy.make_problems("test")] == [p.id for p in test]
    for p in train[:50] + test[:50]:
        a, b, c = (int(x) for x in p.id.split("+"))
        assert p.ground_truth == str(a + b + c) and p.source == toy.TOY_SOURCE
        assert dapo_reward(toy.response_for(p), p.ground_truth) == 1.0
    with pytest.raises(ValueError, match="split"):
        toy.make_problems("validation")


def test_warm_start_lowers_the_loss() -> None:
    tokenizer = toy.build_tokenizer()
    model = toy.build_model(tokenizer, TINY)
    losses = toy.warm_start(model, tokenizer, toy.WarmStart(steps=25, batch_size=16, lr=1e-2))
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert not model.training


def test_prepare_caches_the_warm_start(tmp_path) -> None:
    warm = toy.WarmStart(steps=3, batch_size=8)
    cache = tmp_path / "cache"
    with logs.to_file(tmp_path / "prepare.log"):
        first = toy.prepare(TINY, warm, cache_dir=cache)
        assert (first / "config.json").is_file() and (first / "tokenizer.json").is_file()
        assert json.loads((first / "warm_start.json").read_text())["warm_start"]["steps"] == 3
        stamp = (first / "model.safetensors").stat().st_mtime_ns
        second = toy.prepare(TINY, warm, cache_dir=cache)
        assert second == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
        assert "cached" in (tmp_path / "prepare.log").read_text().splitlines()[-1]
        other = toy.prepare(TINY, toy.WarmStart(steps=4, batch_size=8), cache_dir=cache)
    assert other != first  # every warm-start setting keys the cache
    assert not list(cache.glob(".tmp-*"))


def test_warm_start_is_deterministic() -> None:
    tokenizer = toy.build_tokenizer()
    runs = []
    for _ in range(2):
        model = toy.build_model(tokenizer, TINY, seed=0)
        toy.warm_start(model, tokenizer, toy.WarmStart(steps=3, batch_size=8))
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
