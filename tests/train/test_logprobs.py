"""Log-probs under the policy: the trainer's agree with the sampler's; chunked logits change nothing."""

from __future__ import annotations

import torch

from justrl import recipe as R
from justrl.train import logprobs


def test_sampler_and_trainer_log_probs_agree_with_left_padding(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=3, mini_batch_prompts=3, rollouts_per_prompt=2)
    model, rollouts = toy_rollouts(recipe, texts=["1+2+3=?", "9=?", "12+34+5 and some words=?"])
    assert len({len(p) for p in rollouts.prompt_ids}) == 3
    old, _ = logprobs.policy_log_probs(model, rollouts, recipe, torch.device("cpu"), None)
    sampler = logprobs.padded(rollouts.sampler_log_probs, old.shape)
    mask = logprobs.response_mask(rollouts, old.shape)
    assert mask.sum() > 0
    assert ((sampler - old).abs() * mask).max().item() < 1e-5


def test_chunked_logits_give_the_same_log_probs_entropy_and_gradient(tiny_recipe, toy_rollouts,
                                                                      monkeypatch) -> None:
    recipe = tiny_recipe(prompts_per_step=2, mini_batch_prompts=2)
    model, rollouts = toy_rollouts(recipe, texts=["1+2+3=?", "45+6=? and more"])
    packed = logprobs.pack(rollouts, list(range(len(rollouts))), rollouts.pad_id, torch.device("cpu"))
    results, calls = [], []
    real = logprobs.chunked_log_probs
    monkeypatch.setattr(logprobs, "chunked_log_probs", lambda *a, **k: calls.append(k["chunk"]) or real(*a, **k))
    for limit in (2**40, 3 * 264):  # whole logits, then chunks of 3 positions / len(rollouts)
        monkeypatch.setattr(logprobs, "LOGITS_CHUNK_ELEMENTS", limit)
        model.zero_grad()
        log_probs, entropy = logprobs.forward_log_probs(model, packed, 0.7, None, with_entropy=True)
        ((log_probs + entropy) * packed.response_mask).sum().backward()
        results.append((log_probs, entropy, [p.grad.clone() for p in model.parameters()]))
    (lp_a, ent_a, grad_a), (lp_b, ent_b, grad_b) = results
    assert calls == [1]  # only the second pass was chunked, one position at a time
    assert torch.allclose(lp_a, lp_b, atol=1e-5) and torch.allclose(ent_a, ent_b, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(grad_a, grad_b))


def _groups(recipe, toy_rollouts, texts):
    model, rollouts = toy_rollouts(recipe, texts=texts)
    assert len({len(p) for p in rollouts.prompt_ids}) == len(texts)  # prompts of different lengths
    assert len({len(r) for r in rollouts.response_ids}) > 1  # and responses of different lengths
    return model, rollouts


def test_shared_prompt_layout_gives_the_padded_layouts_log_probs_entropy_and_gradient(tiny_recipe,
                                                                                     toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=3, mini_batch_prompts=3, rollouts_per_prompt=4, max_response_tokens=6)
    model, rollouts = _groups(recipe, toy_rollouts, ["1+2+3=?", "9=?", "12+34+5 and some words=?"])
    rows = [0, 1, 2, 3, 5, 6, 9, 10, 11]  # whole and partial groups
    padded = logprobs.pack(rollouts, rows, rollouts.pad_id, torch.device("cpu"))
    shared = logprobs.pack(rollouts, rows, rollouts.pad_id, torch.device("cpu"), share_prompts=True)
    assert padded.input_ids.shape[0] == len(rows) and shared.input_ids.shape[0] == 3  # a row a prompt
    assert shared.input_ids.numel() < padded.input_ids.numel()
    assert torch.equal(shared.responses * shared.response_mask, padded.responses * padded.response_mask)
    results = []
    for packed in (padded, shared):
        model.zero_grad()
        log_probs, entropy = logprobs.forward_log_probs(model, packed, 0.7, None, with_entropy=True)
        ((log_probs + entropy) * packed.response_mask).sum().backward()
        results.append((log_probs * packed.response_mask, entropy * packed.response_mask,
                        [p.grad.clone() for p in model.parameters()]))
    (lp_a, ent_a, grad_a), (lp_b, ent_b, grad_b) = results
    assert (lp_a - lp_b).abs().max() < 1e-5 and (ent_a - ent_b).abs().max() < 1e-5
    assert any(g.abs().sum() > 0 for g in grad_a)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(grad_a, grad_b))


def test_shared_prompt_layout_is_kept_for_short_responses_only(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=2, mini_batch_prompts=2, rollouts_per_prompt=4)
    model, rollouts = toy_rollouts(recipe)
    group = [0, 1, 2, 3]
    assert logprobs.pack_shared(rollouts, group, rollouts.pad_id, torch.device("cpu")) is not None
    one_per_prompt = [0, 4]  # nothing to share: the padded layout is as small
    assert logprobs.pack_shared(rollouts, one_per_prompt, rollouts.pad_id, torch.device("cpu")) is None
    long = [list(r) + [7] * 200 for r in rollouts.response_ids]  # 200 more tokens: attention area x ~4
    rollouts.response_ids = long
    assert logprobs.pack_shared(rollouts, group, rollouts.pad_id, torch.device("cpu")) is None
    assert logprobs.shares_prompts(recipe, model)
    assert not logprobs.shares_prompts(R.apply(recipe, {"share_prompts": False}), model)
    model.config._attn_implementation = "eager"  # its 4-D masks are additive: padded rows
    assert not logprobs.shares_prompts(recipe, model)
