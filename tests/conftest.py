"""Shared test fixtures: the benchmark files packaged with justrl, a tiny model, deterministic seeds."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest

from justrl.data import benchmarks

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGED_BENCHMARKS = benchmarks.packaged_dir()
"""The nine release files shipped inside the package (NAME/test.parquet), so no test needs ../shared."""

# Keep the 2-core CI machine responsive and runs repeatable.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

STRICT_SKIPS = os.environ.get("JUSTRL_STRICT_SKIPS", "") == "1"
"""CI sets JUSTRL_STRICT_SKIPS=1: a skipped test then fails (a missing package or file must not pass
quietly), except tests marked ``skip_ok`` (a skip about the platform, not about the install)."""

HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_VERL_CPU = HAS_VLLM and all(importlib.util.find_spec(m) is not None for m in ("verl", "transfer_queue"))
ENVIRONMENT_MARKERS = {
    "vllm": HAS_VLLM,
    "verl_cpu": HAS_VERL_CPU,
    **{name: importlib.util.find_spec(name) is not None for name in ("mlflow", "trackio", "lm_eval")},
}
"""Markers of tests that belong to another environment, and whether this one is it: ``vllm`` ->
.venv-vllm (scripts/setup_vllm.sh), ``verl_cpu`` -> .venv-verl (scripts/setup_verl_cpu.sh);
``mlflow``, ``trackio``, ``lm_eval``: an optional package that no locked environment holds (the
sinks' extras, lm-eval), so those tests run only where a user installed it."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of another environment (:data:`ENVIRONMENT_MARKERS`) are deselected here, not skipped."""
    def elsewhere(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) is not None and not here for m, here in ENVIRONMENT_MARKERS.items())

    deselected = [item for item in items if elsewhere(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not elsewhere(item)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if (STRICT_SKIPS and report.skipped and not hasattr(report, "wasxfail")
            and item.get_closest_marker("skip_ok") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under JUSTRL_STRICT_SKIPS=1 (CI): {reason}"


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module skipped at import (``pytest.importorskip`` at module level) fails under strict mode."""
    if STRICT_SKIPS and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"module skipped under JUSTRL_STRICT_SKIPS=1 (CI): {reason}"


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The nine benchmark files: the copy packaged with justrl (checksum-checked)."""
    benchmarks.locate(benchmarks.BENCHMARKS)  # raises if the packaged copy is missing or damaged
    return PACKAGED_BENCHMARKS


@pytest.fixture(scope="session")
def data_dir(shared_benchmarks: Path) -> Path:
    """The folder to pass as ``--data-dir`` (NAME/test.parquet): the packaged copy."""
    return shared_benchmarks


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model and its chat-templated tokenizer, saved locally."""
    from justrl.data import toy

    path = tmp_path_factory.mktemp("tiny-model")
    tokenizer = toy.build_tokenizer()
    config = toy.ToyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=1)
    toy.build_model(tokenizer, config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _library_logging():
    """A test that runs ``cli.main`` in-process sets the CLI's logging up; the next test gets the
    library's (propagating to the root logger, where pytest's caplog listens)."""
    yield
    from justrl import logs

    logs.reset()


# --- the native engine's tests (trainer, rollouts, logprobs, runs) -------------------------------

TRAIN_TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small warm-started toy policy saved with ``save_pretrained`` (right some of the time)."""
    from justrl.data import toy

    return toy.prepare(toy.ToyModelConfig(**TRAIN_TINY), toy.WarmStart(steps=60, batch_size=64, lr=1e-2),
                       cache_dir=tmp_path_factory.mktemp("toy-cache"))


@pytest.fixture
def tiny_recipe(model_dir: Path):
    """``tiny_recipe(**overrides)``: the toy recipe shrunk to a few seconds a step on ``model_dir``."""
    from justrl import recipe as R

    def make(**overrides):
        settings = {
            "model": str(model_dir), "total_steps": 4, "prompts_per_step": 4, "rollouts_per_prompt": 4,
            "mini_batch_prompts": 2, "micro_batch_sequences": 8, "max_response_tokens": 8,
            "val_max_tokens": 8, "val_every": 2, "save_every": 2, "val_samples": 1, "loggers": ["jsonl"],
            "lr": 1e-3, "warmup_steps": 1,
        }
        return R.load("toy", {**settings, **overrides})

    return make


@pytest.fixture
def toy_rollouts(model_dir: Path):
    """``toy_rollouts(recipe, texts=None)``: ``(model, rollouts)`` sampled from ``model_dir`` for the
    first training prompts, or for prompts ``texts`` (of different lengths, to exercise padding)."""
    import torch

    from justrl.data import toy
    from justrl.data.problems import Problem
    from justrl.generate.hf import HFGenerator
    from justrl.train import runs
    from justrl.train.rollouts import encode_prompts, generate_rollouts

    def make(recipe, texts: list[str] | None = None):
        model, tokenizer = runs.load_policy(model_dir, torch.device("cpu"), False)
        problems = toy.make_problems("train")[: recipe.prompts_per_step]
        if texts is not None:
            problems = [Problem(str(i), t, "0", "test") for i, t in enumerate(texts)]
        prompts = encode_prompts(problems, tokenizer, recipe)
        return model, generate_rollouts(HFGenerator(model, tokenizer), prompts, recipe, seed=5)

    return make


@pytest.fixture(scope="module")
def policy():
    """A tiny random two-layer Qwen2 policy (eval mode) and its tokenizer, for the sampling tests."""
    from justrl.data import toy

    tokenizer = toy.build_tokenizer()
    config = toy.ToyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=1)
    model = toy.build_model(tokenizer, config, seed=1)
    model.eval()
    return model, tokenizer
