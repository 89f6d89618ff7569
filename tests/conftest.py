"""Shared test fixtures: the benchmark files packaged with justrl, a tiny model, deterministic seeds."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from justrl import benchmarks

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGED_BENCHMARKS = benchmarks.packaged_dir()
"""The nine release files shipped inside the package (NAME/test.parquet), so no test needs ../shared."""

# Keep the 2-core CI machine responsive and runs repeatable.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


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
    from justrl import toy

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
