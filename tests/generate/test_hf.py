"""The transformers generation backend: padding, seeds, stop handling, sampler log-probs."""

from __future__ import annotations

import pytest
import torch

from justrl.data import toy
from justrl.generate.hf import (
    Completion,
    Generator,
    HFGenerator,
    SamplingParams,
    left_pad,
    position_ids,
    right_pad,
    sample,
)
from justrl.grpo import token_log_probs


def _prompts(tokenizer) -> list[str]:
    texts = ["1+2+3=?", "12+34=? and then some more words", "9=?", "7+7+7+7+7=?"]
    return [toy.chat_prompt(tokenizer, t) for t in texts]


def test_hf_generator_satisfies_the_protocol(policy) -> None:
    generator: Generator = HFGenerator(*policy)
    out = generator.generate(["<|user|>1+1=?<|assistant|>"], SamplingParams(max_new_tokens=3))
    assert isinstance(out[0], Completion) and len(out[0].token_ids) == len(out[0].logprobs) == 3


def test_result_of_a_prompt_and_seed_does_not_depend_on_the_batch(policy) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    together = HFGenerator(model, tokenizer, batch_size=64).generate(prompts, params, seeds=[11, 12, 13, 14])
    alone = [HFGenerator(model, tokenizer).generate([p], params, seeds=[s])[0]
             for p, s in zip(prompts, [11, 12, 13, 14])]
    reordered = HFGenerator(model, tokenizer, batch_size=3).generate(prompts[::-1], params, seeds=[14, 13, 12, 11])
    for a, b, c in zip(together, alone, reordered[::-1]):
        assert a.token_ids == b.token_ids == c.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
        assert a.logprobs == pytest.approx(c.logprobs, abs=1e-5)
    other_seed = HFGenerator(model, tokenizer).generate(prompts[:1], params, seeds=[99])[0]
    assert other_seed.token_ids != together[0].token_ids


def test_a_prompt_given_to_several_rows_is_read_once_and_sampled_as_if_alone(policy) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer)[:2]
    repeated = [prompts[0]] * 3 + [prompts[1]] * 2 + [prompts[0]]  # one prompt's rows need not be together
    seeds = [5, 6, 7, 8, 9, 10]
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    prefill_rows = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: prefill_rows.append(kwargs["input_ids"].shape) if kwargs["input_ids"].shape[1] > 1
        else None, with_kwargs=True)
    try:
        together = HFGenerator(model, tokenizer).generate(repeated, params, seeds=seeds)
    finally:
        hook.remove()
    assert [shape[0] for shape in prefill_rows] == [2]  # the two distinct prompts, once each
    for prompt, seed, got in zip(repeated, seeds, together):
        alone = HFGenerator(model, tokenizer).generate([prompt], params, seeds=[seed])[0]
        assert got.token_ids == alone.token_ids and got.text == alone.text
        assert got.logprobs == pytest.approx(alone.logprobs, abs=1e-5)
    assert len({tuple(c.token_ids) for c in together[:3]}) > 1  # the rows of one prompt drew their own samples


def test_sampler_log_probs_match_a_left_padded_full_forward(policy) -> None:
    """The KV-cache decode and one full forward over [left-padded prompt | response] agree."""
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    completions = HFGenerator(model, tokenizer).generate(prompts, SamplingParams(temperature=0.7, max_new_tokens=10))
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    assert len({len(p) for p in prompt_ids}) > 1  # padding is exercised
    ids, mask = left_pad([p + c.token_ids for p, c in zip(prompt_ids, completions)], 0)
    # responses are all 10 tokens here (no stop), so the whole batch shares the response columns
    assert all(len(c.token_ids) == 10 for c in completions)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits
    recomputed = token_log_probs(logits[:, -11:-1] / 0.7, ids[:, -10:])
    sampler = torch.tensor([c.logprobs for c in completions])
    assert (recomputed - sampler).abs().max().item() < 1e-5


def test_stop_token_ends_a_response_and_rows_finish_independently(policy) -> None:
    """Steer the logits: prompts ending in "?" answer "s" then stop; those ending in "!" say "c" forever."""
    model, tokenizer = policy
    eos = tokenizer.eos_token_id
    q, s, c = (tokenizer(ch, add_special_tokens=False)["input_ids"][0] for ch in "?sc")

    def steer(module, args, kwargs, output):
        ids, logits = kwargs["input_ids"], output.logits
        if ids.shape[1] > 1:  # the prompt pass: decide by the prompt's last character
            target = torch.where(ids[:, -2] == q, s, c)
        else:
            target = torch.where(ids[:, -1] == s, eos, c)
        logits[:, -1, :] = -1e4
        logits[torch.arange(len(ids)), -1, target] = 1e4
        return output

    prompts = [toy.chat_prompt(tokenizer, t) for t in ["1+2?", "3!", "45+6?", "7+8+9!"]] * 3
    hook = model.register_forward_hook(steer, with_kwargs=True)
    try:
        out = HFGenerator(model, tokenizer).generate(prompts, SamplingParams(max_new_tokens=8, seed=3))
    finally:
        hook.remove()
    for prompt, completion in zip(prompts, out):
        if prompt.endswith("?<|assistant|>"):
            assert completion.token_ids == [s, eos] and completion.finish_reason == "stop"
            assert completion.text == "s"
        else:
            assert completion.token_ids == [c] * 8 and completion.finish_reason == "length"
        assert completion.logprobs == pytest.approx([0.0] * len(completion.token_ids), abs=1e-4)


def test_sample_greedy_top_p_and_frequencies() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    u = torch.rand(4, dtype=torch.float64)
    greedy, _ = sample(logits, u, temperature=0.0, top_p=1.0)
    assert torch.equal(greedy, logits.argmax(-1))
    nucleus, _ = sample(logits, u, temperature=1.0, top_p=1e-9)
    assert torch.equal(nucleus, logits.argmax(-1))
    # inverse-CDF sampling reproduces the distribution
    row = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    draws = torch.rand(20000, dtype=torch.float64)
    tokens, logprobs = sample(row.expand(20000, 4), draws, temperature=1.0, top_p=1.0)
    freq = torch.bincount(tokens, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.softmax(row[0], -1), atol=0.015)
    assert torch.allclose(logprobs, torch.log_softmax(row[0], -1)[tokens])
    # top-p keeps the smallest head reaching p: here the two most likely tokens
    kept, _ = sample(row.expand(20000, 4), draws, temperature=1.0, top_p=0.8)
    assert set(kept.tolist()) == {1, 2}


def test_left_pad_and_positions() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def test_left_and_right_pad_place_every_value_and_mask_it() -> None:
    ids, mask = left_pad([[5, 6, 7], [], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 0], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 1]]
    values, mask = right_pad([[0.5, -1.0], [2.0]], width=3, fill=9.0, dtype=torch.float32)
    assert values.tolist() == [[0.5, -1.0, 9.0], [2.0, 9.0, 9.0]] and mask.tolist() == [[1, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="wider than 1"):
        right_pad([[1, 2]], width=1, fill=0, dtype=torch.long)
