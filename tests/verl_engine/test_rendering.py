"""Rendering settings as Hydra overrides: values read back exactly; the table shown side by side."""

from __future__ import annotations

import pytest

from justrl.cli import main
from justrl.verl_engine import rendering


@pytest.mark.parametrize("value", ["pkg://a.b", "/x/y z.parquet", "it's", "42", "True", "null", "back\\",
                                   "a,b", "[x]", "~/data"])
def test_hydra_values_read_back_exactly(value: str) -> None:
    assert rendering._parsed_value(rendering.hydra_value(value)) == value


def test_keys_outside_verls_schema_are_added_with_a_plus() -> None:
    assert rendering.render("reward.reward_kwargs.max_resp_len", 8) == "+reward.reward_kwargs.max_resp_len=8"
    assert rendering.render("data.train_batch_size", 8) == "data.train_batch_size=8"
    assert rendering.render("trainer.logger", ["console", "file"]) == "trainer.logger=[console,file]"


def test_recipe_show_engine_verl(capsys) -> None:
    assert main(["recipe", "show", "justrl-deepseek-1.5b", "--engine", "verl"]) == 0
    out = capsys.readouterr().out
    for name in ("clip_high", "actor_rollout_ref.actor.clip_ratio_high", "0.28", "micro_batch_sequences",
                 "engine settings", "pkg://justrl.verl_reward"):
        assert name in out, name
