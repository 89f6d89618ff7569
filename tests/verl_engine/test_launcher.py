"""The launch: the dry run writes the script and prints the exact command; the CLI's verl path."""

from __future__ import annotations

import shlex
import subprocess
import sys

from justrl import recipe as R
from justrl.cli import main, split_verl_overrides
from justrl.verl_engine import launcher, rendering
from justrl.verl_engine.plan import make_plan

PAPER = "justrl-deepseek-1.5b"


def test_dry_run_writes_the_script_and_prints_the_command(tmp_path, capsys, messages) -> None:
    run = tmp_path / "run"
    recipe = R.load(PAPER, ["lr=2e-6"])
    plan = make_plan(recipe, run, nnodes=4, gpus_per_node=8, extra=["trainer.max_actor_ckpt_to_keep=3"])
    assert launcher.launch(recipe, plan, dry_run=True) == 0
    out = capsys.readouterr().out
    for expected in ("actor_rollout_ref.actor.clip_ratio_high=0.28", "actor_rollout_ref.actor.clip_ratio_c=10.0",
                     "actor_rollout_ref.rollout.n=8", "data.train_batch_size=256",
                     "actor_rollout_ref.actor.ppo_mini_batch_size=64", "actor_rollout_ref.actor.optim.lr=2e-06",
                     "actor_rollout_ref.actor.use_kl_loss=False", "algorithm.use_kl_in_reward=False",
                     "data.max_response_length=15360", "trainer.max_actor_ckpt_to_keep=3", "-m verl.trainer.main_ppo"):
        assert expected in out, expected
    assert "note: val_max_tokens=31744" in messages.text  # a warning, not the command's output
    assert "note:" not in out
    script = run / launcher.SCRIPT_NAME
    assert script.stat().st_mode & 0o100
    assert R.load(str(run / "recipe.yaml")).lr == 2e-6
    text = script.read_text()
    assert "data export --format verl" in text and "BytedTsinghua-SIA/DAPO-Math-17k" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_given_data_files_skip_the_export(tmp_path, capsys) -> None:
    train = tmp_path / "t.parquet"
    recipe = R.load(PAPER)
    plan = make_plan(recipe, tmp_path / "run", nnodes=4, train_files=[str(train)],
                     val_files=[str(tmp_path / "v.parquet")])
    assert launcher.launch(recipe, plan, dry_run=True) == 0
    assert f"data.train_files=[{train}]" in capsys.readouterr().out
    assert "data export" not in (tmp_path / "run" / launcher.SCRIPT_NAME).read_text()


def test_printed_command_is_exact(paper_plan) -> None:
    recipe, plan = paper_plan
    override_list = rendering.overrides(recipe, plan) + ["+reward.reward_kwargs.note='a b'"]
    text = launcher.format_command(launcher.command(override_list, python="python"))
    assert shlex.split(text.replace("\\\n", " ")) == ["python", "-m", launcher.ENTRYPOINT, *override_list]


def test_split_overrides() -> None:
    assert split_verl_overrides(["lr=1", "a.b=2", "+reward.reward_kwargs.x=3", "name=x.y"]) == (
        ["lr=1", "name=x.y"], ["a.b=2", "+reward.reward_kwargs.x=3"])


def test_cli_train_engine_verl_dry_run(tmp_path, capsys) -> None:
    code = main(["train", "--engine", "verl", "--recipe", PAPER, "--dry-run", "--run-dir", str(tmp_path / "r"),
                 "lr=2e-6", "trainer.max_actor_ckpt_to_keep=3"])
    assert code == 0
    out = capsys.readouterr().out
    assert "actor_rollout_ref.actor.clip_ratio_high=0.28" in out
    assert "actor_rollout_ref.actor.optim.lr=2e-06" in out and out.rstrip().endswith("trainer.max_actor_ckpt_to_keep=3")
    assert out.startswith(f"{shlex.quote(sys.executable)} -m verl.trainer.main_ppo")


def test_cli_refuses_a_bad_verl_override(tmp_path, capsys) -> None:
    code = main(["train", "--engine", "verl", "--dry-run", "--run-dir", str(tmp_path / "r"),
                 "actor_rollout_ref.actor.clip_ratio_hi=0.3"])
    assert code == 2
    assert "clip_ratio_hi" in capsys.readouterr().err
    assert not (tmp_path / "r" / launcher.SCRIPT_NAME).exists()
