"""Run folders and evaluation folders refuse each other."""

from __future__ import annotations

import pytest

from justrl import io
from justrl.errors import ConfigError


def test_each_command_refuses_the_others_folder(tmp_path) -> None:
    io.refuse_run_folder(tmp_path)  # empty: anyone's
    io.refuse_eval_folder(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="a training run's folder \\(it has checkpoints\\)"):
        io.refuse_run_folder(tmp_path)
    io.refuse_eval_folder(tmp_path)
    (tmp_path / "eval_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="an evaluation's folder \\(it has eval_config.json\\)"):
        io.refuse_eval_folder(tmp_path)
