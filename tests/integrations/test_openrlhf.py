"""justrl.integrations.openrlhf: OpenRLHF's reward_func(queries, prompts, labels) contract."""

from __future__ import annotations

import inspect

import torch

from justrl.integrations import openrlhf


def test_reward_func_has_openrlhfs_signature_and_returns_its_dict() -> None:
    reward = openrlhf.reward_func("dapo-strict")
    assert list(inspect.signature(reward).parameters)[:3] == ["queries", "prompts", "labels"]
    prompts = ["<|user|>1+2+3=?<|assistant|>", "<|user|>4+4+1=?<|assistant|>", "<|user|>0+0+0=?<|assistant|>"]
    queries = [prompts[0] + "\\boxed{6}", prompts[1] + "\\boxed{8}", prompts[2] + "nothing"]
    out = reward(queries, prompts, ["6", "9", "0"], extra_kwarg_openrlhf_may_pass=1)
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].tolist() == [1.0, -1.0, -1.0]
    assert out["scores"].tolist() == [1.0, 0.0, 0.0]
    assert abs(float(out["extra_logs"]["justrl/acc"]) - 1 / 3) < 1e-6
    assert float(out["extra_logs"]["justrl/undecided"]) == 0.0


def test_only_the_generated_part_is_graded() -> None:
    # the prompt's own \boxed{} (a worked example in it) must not count as the answer
    prompt = "Example: \\boxed{6}. Now 1+1+1=?"
    reward = openrlhf.reward_func("dapo-strict", correct=1.0, incorrect=0.0)
    assert reward([prompt + " I do not know"], [prompt], ["6"])["rewards"].tolist() == [0.0]
    assert openrlhf.response_of("abc", "zz") == "abc"
