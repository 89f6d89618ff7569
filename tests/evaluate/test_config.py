"""Evaluation settings: the paper's protocol by default, typed and checked ``key=value`` overrides."""

from __future__ import annotations

import pytest

from justrl import evaluate as E


def test_defaults_are_the_papers_protocol():
    config = E.EvalConfig(model="m")
    assert E.EVAL_PROMPT.format(problem="What is $1+1$?") == (
        "What is $1+1$? Please reason step by step, and put your final answer within \\boxed{}.")
    assert (config.prompt, config.temperature, config.top_p, config.max_tokens) == (E.EVAL_PROMPT, 0.7, 0.9, 31_744)
    assert config.n is None and config.benchmarks == ["all"] and config.backend == "hf"
    assert config.grader == "justrl-eval"
    assert config.samples_per_call() == 32 and E.EvalConfig(model="m", backend="vllm").samples_per_call() == 512
    params = E.sampling_params(config)
    assert (params.temperature, params.top_p, params.max_new_tokens) == (0.7, 0.9, 31_744)


def test_overrides_are_typed_recorded_and_checked():
    config = E.apply_overrides(E.EvalConfig(model="m"), [
        "n=2", "temperature=0.6", "top_p=1", "max_tokens=1_024", "batch_size=8", "seed=3", "limit=none",
        "enforce_eager=true", "prompt={problem}\\nAnswer in \\\\boxed{{}}."])
    assert (config.n, config.temperature, config.top_p, config.max_tokens, config.batch_size, config.seed) == (
        2, 0.6, 1.0, 1024, 8, 3)
    assert config.limit is None and config.enforce_eager is True
    assert config.prompt == "{problem}\nAnswer in \\boxed{{}}."
    paper = E.apply_overrides(config, ["prompt={problem} Put your final answer within \\boxed{}."])
    assert paper.prompt == "{problem} Put your final answer within \\boxed{}."  # \b is not a backspace
    assert config.to_dict()["temperature"] == 0.6
    with pytest.raises(E.EvalError, match="unknown setting 'temprature'"):
        E.apply_overrides(config, ["temprature=1"])
    with pytest.raises(E.EvalError, match="unknown setting 'model'"):
        E.apply_overrides(config, ["model=other"])  # a flag, not a key=value setting
    with pytest.raises(E.EvalError, match="n: expected an integer"):
        E.apply_overrides(config, ["n=two"])
    with pytest.raises(E.EvalError, match="top_p must be in"):
        E.apply_overrides(config, ["top_p=0"])
    with pytest.raises(E.EvalError, match="not of the form"):
        E.apply_overrides(config, ["n"])
    with pytest.raises(E.EvalError, match="family must be one of deepseek-1.5b, nemotron-1.5b, all or none"):
        E.apply_overrides(config, ["family=qwen"])
    assert E.apply_overrides(config, ["family=nemotron-1.5b"]).family == "nemotron-1.5b"


def test_flags_are_not_overridable_and_out_dir_defaults_to_the_model_name():
    assert "model" not in E.override_keys() and "workers" not in E.override_keys()
    assert {"n", "temperature", "grader", "retries"} <= set(E.override_keys())
    assert str(E.EvalConfig(model="hub/Some-Model/").out_dir()) == "runs/eval/Some-Model"
    assert str(E.EvalConfig(model="m", out="elsewhere").out_dir()) == "elsewhere"


def test_one_named_gpu_with_several_workers_is_refused():
    """Case 5 of issue 14: each Ray worker sees only the GPU Ray gives it, as cuda:0."""
    with pytest.raises(E.EvalError, match=r"device=cuda:1 names one GPU, but each of the 2 Ray workers"):
        E.EvalConfig(model="m", device="cuda:1", workers=2).validate()
    E.EvalConfig(model="m", device="cuda", workers=2).validate()
    E.EvalConfig(model="m", device="cuda:1").validate()


def test_engine_settings_are_checked():
    config = E.EvalConfig(model="m")
    assert (config.judge_tensor_parallel_size, config.allow_truncated_budget) == (1, False)
    for bad in ("judge_gpu_memory_utilization=1.5", "judge_tensor_parallel_size=0", "max_model_len=0",
                "judge_batch_tokens=0"):
        with pytest.raises(E.EvalError, match=bad.split("=")[0]):
            E.apply_overrides(config, [bad])
