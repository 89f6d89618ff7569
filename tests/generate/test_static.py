"""The static-cache rollout path: same samples and log-probs as HFGenerator, compaction, compilation."""

from __future__ import annotations

import pytest
import torch

from justrl.data import toy
from justrl.generate.factory import load_hf_generator, make_hf_generator
from justrl.generate.hf import (
    Generator,
    HFGenerator,
    SamplingParams,
    left_pad,
    position_ids,
)
from justrl.generate.static import StaticCacheGenerator, bucket_rows, round_up
from justrl.grpo import token_log_probs


def _prompts(tokenizer, copies: int = 1) -> list[str]:
    texts = ["1+2+3=?", "12+34=? and then some more words", "9=?", "7+7+7+7+7=?", "5+5=?"]
    return [toy.chat_prompt(tokenizer, t) for t in texts] * copies


def _assert_same(expected, got) -> None:
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
        assert a.token_ids == b.token_ids
        assert a.finish_reason == b.finish_reason and a.text == b.text
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_buckets() -> None:
    assert [bucket_rows(n, 64) for n in (1, 2, 3, 5, 8, 9, 64)] == [1, 2, 4, 8, 8, 16, 64]
    assert bucket_rows(50, 48) == 50  # a batch larger than the cap runs as it is
    assert bucket_rows(40, 48) == 48
    assert round_up(257, 256) == 512 and round_up(256, 256) == 256


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_same_samples_as_the_plain_path_for_the_same_seeds(policy, temperature, top_p) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=24)
    seeds = [5, 6, 7, 8, 9]
    plain = HFGenerator(model, tokenizer).generate(prompts, params, seeds=seeds)
    static = StaticCacheGenerator(model, tokenizer, length_bucket=16, check_every=4)
    got = static.generate(prompts, params, seeds=seeds)
    _assert_same(plain, got)
    assert static._caches and all(length % 16 == 0 for _, length in static._caches)
    # a second call reuses the bucket's cache and gives the same answer
    _assert_same(plain, static.generate(prompts, params, seeds=seeds))


def test_log_probs_match_the_trainers_recomputation(policy) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    out = StaticCacheGenerator(model, tokenizer, length_bucket=8).generate(
        prompts, SamplingParams(temperature=0.7, max_new_tokens=10))
    assert all(len(c.token_ids) == 10 for c in out)
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    ids, mask = left_pad([p + c.token_ids for p, c in zip(prompt_ids, out)], 0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits
    recomputed = token_log_probs(logits[:, -11:-1] / 0.7, ids[:, -10:])
    assert (recomputed - torch.tensor([c.logprobs for c in out])).abs().max().item() < 1e-5


def _eos_bias(model, eos: int, bias: float):
    """Make stopping likely, so rows finish at different (random) steps."""
    def hook(module, args, kwargs, output):
        output.logits[:, -1, eos] += bias
        return output
    return model.register_forward_hook(hook, with_kwargs=True)


def test_finished_rows_are_compacted_and_results_do_not_change(policy) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer, copies=4)  # 20 prompts -> a 32-row bucket
    seeds = list(range(100, 120))
    params = SamplingParams(temperature=1.0, max_new_tokens=40)
    hook = _eos_bias(model, tokenizer.eos_token_id, 4.0)
    try:
        plain = HFGenerator(model, tokenizer).generate(prompts, params, seeds=seeds)
        static = StaticCacheGenerator(model, tokenizer, length_bucket=16, check_every=2)
        got = static.generate(prompts, params, seeds=seeds)
    finally:
        hook.remove()
    reasons = {c.finish_reason for c in plain}
    lengths = sorted(len(c.token_ids) for c in plain)
    assert reasons == {"stop", "length"} or lengths[0] < lengths[-1]  # rows finished at different steps
    assert static.compactions >= 1
    _assert_same(plain, got)
    assert all(c.token_ids[-1] == tokenizer.eos_token_id for c in got if c.finish_reason == "stop")


def test_batches_larger_than_the_batch_size_are_split(policy) -> None:
    model, tokenizer = policy
    prompts = _prompts(tokenizer, copies=2)
    params = SamplingParams(max_new_tokens=6, seed=4)
    plain = HFGenerator(model, tokenizer).generate(prompts, params)
    _assert_same(plain, StaticCacheGenerator(model, tokenizer, batch_size=4).generate(prompts, params))


def test_compiled_decode_step_gives_the_same_samples(policy) -> None:
    """torch.compile's graph capture (dynamo + aot autograd) over the static cache, without codegen."""
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    params = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=12)
    plain = HFGenerator(model, tokenizer).generate(prompts, params, seeds=[1, 2, 3, 4, 5])
    static = StaticCacheGenerator(model, tokenizer, compile=True, compile_backend="aot_eager",
                                  length_bucket=16)
    _assert_same(plain, static.generate(prompts, params, seeds=[1, 2, 3, 4, 5]))
    assert static._compiled is not None


@pytest.mark.slow
def test_inductor_compiled_decode_step_gives_the_same_samples(policy) -> None:
    """The GPU path's compiler (inductor) on the CPU: about a minute of C++ compilation on 2 cores."""
    model, tokenizer = policy
    prompts = _prompts(tokenizer)
    params = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=12)
    plain = HFGenerator(model, tokenizer).generate(prompts, params, seeds=[1, 2, 3, 4, 5])
    try:
        got = StaticCacheGenerator(model, tokenizer, compile=True, length_bucket=16).generate(
            prompts, params, seeds=[1, 2, 3, 4, 5])
    except Exception as exc:  # no C++ toolchain for inductor here
        if "compiler" not in str(exc).lower() and "InductorError" not in type(exc).__name__:
            raise
        pytest.skip(f"inductor cannot compile on this machine: {exc}")
    _assert_same(plain, got)


def test_backend_choice(policy, tiny_model) -> None:
    model, tokenizer = policy
    assert type(make_hf_generator(model, tokenizer, "hf")) is HFGenerator
    assert isinstance(make_hf_generator(model, tokenizer, "hf-static"), StaticCacheGenerator)
    assert type(make_hf_generator(model, tokenizer, "auto")) is HFGenerator  # CPU: the plain path
    with pytest.raises(ValueError, match="backend"):
        make_hf_generator(model, tokenizer, "vllm")
    generator: Generator = load_hf_generator(str(tiny_model), backend="hf-static")
    assert isinstance(generator, StaticCacheGenerator) and not generator.compile
    assert len(generator.generate(["<|user|>1+1=?<|assistant|>"], SamplingParams(max_new_tokens=3))) == 1
