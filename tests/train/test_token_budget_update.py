"""Token-budget micro-batches in the trainer's update: the same gradient as one whole mini-batch."""

from __future__ import annotations

import importlib

import torch

from justrl import recipe as R
from justrl.data import toy
from justrl.generate.hf import HFGenerator, SamplingParams
from justrl.train import micro_batches

# After the trainer split these live in justrl.train.rollouts / justrl.train.logprobs; before it, in trainer.
_modules = [m for m in ("justrl.train.rollouts", "justrl.train.logprobs", "justrl.train.loop")
            if importlib.util.find_spec(m) is not None]


def _find(name: str):
    return next(getattr(importlib.import_module(m), name) for m in _modules
                if hasattr(importlib.import_module(m), name))


class RecordingAdamW(torch.optim.AdamW):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.applied: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        self.applied.append([p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                             for group in self.param_groups for p in group["params"]])
        return super().step(closure)


def _rollouts(model, tokenizer, recipe):
    """16 rollouts of different lengths (a biased stop token ends them at random steps)."""
    prompts = [tokenizer(toy.chat_prompt(tokenizer, t), add_special_tokens=False)["input_ids"]
               for t in ("1+2+3=?", "4+5=?", "7=?", "8+8+8+8+8=?")]
    prompt_ids = [p for p in prompts for _ in range(recipe.rollouts_per_prompt)]

    def more_stops(module, args, kwargs, output):
        output.logits[:, -1, tokenizer.eos_token_id] += 4.0
        return output

    hook = model.register_forward_hook(more_stops, with_kwargs=True)
    try:
        done = HFGenerator(model, tokenizer).generate_from_ids(
            prompt_ids, SamplingParams(max_new_tokens=recipe.max_response_tokens, seed=3))
    finally:
        hook.remove()
    return _find("Rollouts")(
        prompt_ids=prompt_ids, response_ids=[c.token_ids for c in done],
        sampler_log_probs=[c.logprobs for c in done], truncated=[c.finish_reason == "length" for c in done],
        texts=[c.text for c in done], ground_truths=["0"] * len(done),
        group=[i // recipe.rollouts_per_prompt for i in range(len(done))], pad_id=tokenizer.pad_token_id)


def _gradient(model, rollouts, advantages, recipe) -> list[torch.Tensor]:
    old, _ = _find("policy_log_probs")(model, rollouts, recipe, torch.device("cpu"), None)
    optimizer = RecordingAdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    _find("update_policy")(model, optimizer, rollouts, old, advantages, recipe, torch.device("cpu"), None,
                           shuffle_seed=0)
    return optimizer.applied[0]


def test_token_budget_micro_batches_give_the_same_gradient() -> None:
    tokenizer = toy.build_tokenizer()
    model = toy.build_model(tokenizer, toy.ToyModelConfig(hidden_size=32, intermediate_size=64), seed=2)
    recipe = R.load("toy", {"prompts_per_step": 4, "mini_batch_prompts": 4, "rollouts_per_prompt": 4,
                            "max_response_tokens": 16, "micro_batch_sequences": 16, "max_prompt_tokens": 32})
    rollouts = _rollouts(model, tokenizer, recipe)
    lengths = [len(r) for r in rollouts.response_ids]
    assert len(set(lengths)) > 3  # responses of many lengths
    budget = R.apply(recipe, {"micro_batch_tokens": 64})
    cuts = micro_batches.for_rollouts(rollouts, list(range(len(rollouts))), budget)
    assert 2 < len(cuts) < len(rollouts) and any(len(c) > 1 for c in cuts)  # a real packing
    advantages = torch.randn(len(rollouts), generator=torch.Generator().manual_seed(0))
    whole = _gradient(model, rollouts, advantages, recipe)
    packed = _gradient(model, rollouts, advantages, budget)
    assert any(g.abs().sum() > 0 for g in whole)
    for a, b in zip(whole, packed):
        assert (a - b).abs().max().item() < 1e-5
