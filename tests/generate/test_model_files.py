"""Model paths checked before anything loads, and the weights' fingerprint an eval folder records."""

from __future__ import annotations

import os

import pytest

from justrl.errors import ModelLoadError
from justrl.generate import model_files


def test_paths_and_offline_hub_ids_fail_in_one_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(ModelLoadError, match="model /nonexistent: no such folder"):
        model_files.check_source("/nonexistent")
    with pytest.raises(ModelLoadError, match="--tokenizer ./gone: no such folder"):
        model_files.check_source("./gone", "--tokenizer")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a folder"):
        model_files.check_source(str(tmp_path / "weights.bin"))
    assert model_files.check_source(str(tmp_path)) == tmp_path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache, and the hub is offline"):
        model_files.check_source("nobody-org/no-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert model_files.check_source("nobody-org/no-model") is None  # fetched later, by transformers


def test_fingerprint_follows_the_bytes_not_the_path(tmp_path) -> None:
    model = tmp_path / "final"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "config.json").write_text("{}")  # not a weight file
    first = model_files.fingerprint(str(model))
    (tmp_path / "link").symlink_to(model)
    assert model_files.fingerprint(str(tmp_path / "link"))["sha256"] == first["sha256"]
    # a file whose size and mtime are unchanged keeps its recorded hash (not read again)
    known = {"files": {"model.safetensors": {**first["files"]["model.safetensors"], "sha256": "cached"}}}
    assert model_files.fingerprint(str(model), known)["files"]["model.safetensors"]["sha256"] == "cached"
    (model / "model.safetensors").write_bytes(b"weights-2")  # same size, new content (train --resume)
    stat = (model / "model.safetensors").stat()
    os.utime(model / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert model_files.fingerprint(str(model), first)["sha256"] != first["sha256"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no weight files"):
        model_files.fingerprint(str(tmp_path / "empty"))
