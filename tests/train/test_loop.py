"""The native GRPO engine: the update schedule and its gradients, whole runs, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from justrl import grpo
from justrl import recipe as R
from justrl.data import toy
from justrl.dynamics import metrics as metrics_mod
from justrl.train import logprobs, runs
from justrl.train import loop as trainer
from justrl.train.rollouts import score_rollouts


class RecordingAdamW(torch.optim.AdamW):
    """AdamW that keeps a copy of the gradients it is asked to apply."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.applied: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        self.applied.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params])
        return super().step(closure)


def run_update(model, rollouts, advantages, recipe):
    old, _ = logprobs.policy_log_probs(model, rollouts, recipe, torch.device("cpu"), None)
    optimizer = RecordingAdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    stats = trainer.update_policy(model, optimizer, rollouts, old, advantages, recipe, torch.device("cpu"),
                                  None, shuffle_seed=0)
    return optimizer, stats


# --- the update ----------------------------------------------------------------------------------

def test_minibatch_schedule_gives_prompts_over_minibatch_updates_per_epoch(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=8, mini_batch_prompts=2, rollouts_per_prompt=2,
                         ppo_epochs=2, micro_batch_sequences=3)
    model, rollouts = toy_rollouts(recipe)
    advantages = torch.randn(len(rollouts))
    optimizer, stats = run_update(model, rollouts, advantages, recipe)
    assert len(optimizer.applied) == stats.count == 2 * 8 // 2 and stats.skipped == 0


def test_micro_batching_does_not_change_the_gradient(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=4, mini_batch_prompts=4, shuffle_mini_batches=False)
    model, rollouts = toy_rollouts(recipe)
    assert len({len(r) for r in rollouts.response_ids}) > 1  # responses of different lengths
    advantages = torch.randn(len(rollouts))
    whole, _ = run_update(model, rollouts, advantages, R.apply(recipe, {"micro_batch_sequences": 16}))
    pieces, _ = run_update(model, rollouts, advantages, R.apply(recipe, {"micro_batch_sequences": 3}))
    for a, b in zip(whole.applied[0], pieces.applied[0]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in whole.applied[0])


def test_first_update_takes_its_old_log_probs_from_its_own_forward_pass(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(prompts_per_step=4, mini_batch_prompts=2, rollouts_per_prompt=4, micro_batch_sequences=3)
    model, rollouts = toy_rollouts(recipe)
    advantages = torch.randn(len(rollouts), generator=torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    full_old, full_entropy = logprobs.policy_log_probs(model, rollouts, recipe, cpu, None)
    recomputed = RecordingAdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    trainer.update_policy(model, recomputed, rollouts, full_old.clone(), advantages, recipe, cpu, None, shuffle_seed=0)

    first = trainer.first_mini_batch(recipe, len(rollouts), shuffle_seed=0)
    assert first == list(range(8)) and trainer.dropout_free(model)
    old, entropy = logprobs.policy_log_probs(model, rollouts, recipe, cpu, None, skip=first)
    assert torch.count_nonzero(old[first]) == 0 and torch.count_nonzero(old[8:]) > 0
    reused = RecordingAdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    stats = trainer.update_policy(model, reused, rollouts, old, advantages, recipe, cpu, None, shuffle_seed=0,
                                  on_policy_entropy=entropy)
    mask = logprobs.response_mask(rollouts, old.shape)  # (what padding positions hold is never read)
    assert torch.allclose(old * mask, full_old * mask, atol=1e-5)
    assert torch.allclose(entropy * mask, full_entropy * mask, atol=1e-5)
    assert torch.count_nonzero(old[first]) > 0
    assert len(reused.applied) == len(recomputed.applied) == stats.count == 2
    for a, b in zip(recomputed.applied, reused.applied):
        assert all(torch.allclose(x, y, atol=1e-6, rtol=1e-4) for x, y in zip(a, b))


def test_a_model_with_dropout_recomputes_every_old_log_prob(tiny_recipe, toy_rollouts) -> None:
    model, _ = toy_rollouts(tiny_recipe())
    model.config.attention_dropout = 0.1  # train mode would differ from the inference pass
    assert not trainer.dropout_free(model)


def test_step_with_all_equal_rewards_has_zero_gradient(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(max_response_tokens=1)  # one token: never a right answer
    model, rollouts = toy_rollouts(recipe)
    rewards, _ = score_rollouts(rollouts, recipe)
    assert torch.all(rewards == -1.0)
    advantages = grpo.group_advantages(rewards, rollouts.group)
    optimizer, stats = run_update(model, rollouts, advantages, recipe)
    assert optimizer.applied and all(torch.count_nonzero(g) == 0 for step in optimizer.applied for g in step)
    assert stats.metrics["actor/grad_norm"] == 0.0


def test_run_writes_its_directory_and_final_policy_loads(model_dir, tiny_recipe, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = tiny_recipe(total_steps=3, val_every=3, save_every=2)
    result = trainer.train(recipe, tmp_path / "run", console=False)
    run = tmp_path / "run"
    assert result.stopped == "finished" and result.steps == 3
    assert R.load(str(run / "recipe.yaml")) == recipe
    records = metrics_mod.read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    for record in records[1:]:
        assert set(metrics_mod.STEP_METRICS) <= set(record)
        assert record["rollout/logprob_diff"] < 1e-5
    assert records[1]["actor/lr"] == 0.0 and records[2]["actor/lr"] == pytest.approx(1e-3)  # verl's warm-up
    assert "val-core/toy-arithmetic/acc/mean@1" in records[0] and "val-core/toy-arithmetic/acc/mean@1" in records[3]
    assert any(r["actor/grad_norm"] > 0 for r in records[1:])  # the run did learn something
    summary = json.loads((run / "summary.json").read_text())
    assert summary["acc_before"] == records[0]["val/acc"] and summary["acc_after"] == records[3]["val/acc"]
    assert summary["wall_seconds"] > 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_2", "step_3"]
    assert (run / "train.log").read_text().count("step 3:") == 1
    model = AutoModelForCausalLM.from_pretrained(run / "final")
    tokenizer = AutoTokenizer.from_pretrained(run / "final")
    start = AutoModelForCausalLM.from_pretrained(model_dir)
    assert tokenizer.eos_token == toy.EOS
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), start.parameters()))


def test_non_finite_updates_are_skipped_then_the_run_stops(tiny_recipe, tmp_path, monkeypatch) -> None:
    real = grpo.policy_loss

    def poisoned(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        return loss * float("nan"), stats

    monkeypatch.setattr(trainer.grpo, "policy_loss", poisoned)
    recipe = tiny_recipe(total_steps=5, val_before_train=False, mini_batch_prompts=4)  # 1 update/step
    result = trainer.train(recipe, tmp_path, console=False)
    assert result.stopped == "non-finite" and result.steps == trainer.MAX_NONFINITE_IN_A_ROW
    log = (tmp_path / "train.log").read_text()
    assert "skipped 1 of 1 updates with a non-finite loss" in log
    assert f"stopping: {trainer.MAX_NONFINITE_IN_A_ROW} optimizer updates in a row" in log
    assert not (tmp_path / "final").exists()


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tiny_recipe, tmp_path) -> None:
    recipe = tiny_recipe(total_steps=4, save_every=10, val_every=10, val_before_train=False)

    def press_ctrl_c(step: int, values: dict) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    result = trainer.train(recipe, tmp_path, console=False, on_step=press_ctrl_c)
    assert result.stopped == "interrupted" and result.steps == 2
    assert runs.latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_2"
    again = trainer.train(None, tmp_path, resume=True, console=False)
    assert again.stopped == "finished" and again.steps == 4


def _train_command(recipe_file: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "justrl.cli", "train", "--recipe", str(recipe_file), "--run-dir", str(run_dir),
            *extra]


def _comparable(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("timing_s/")}
            for r in metrics_mod.read_jsonl(run_dir / "metrics.jsonl")]


def test_sigkill_and_resume_reproduces_the_uninterrupted_run(tiny_recipe, tmp_path) -> None:
    # the kill lands inside the warm-up, so the schedule's state must resume exactly too
    recipe = tiny_recipe(total_steps=14, save_every=3, val_every=5, warmup_steps=8)
    recipe_file = tmp_path / "recipe.yaml"
    recipe.save(recipe_file)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # bitwise-repeatable CPU math
    logs = {name: (tmp_path / f"{name}.err").open("w") for name in ("whole", "killed", "resumed")}
    whole = subprocess.Popen(_train_command(recipe_file, tmp_path / "whole"), stdout=subprocess.DEVNULL,
                             stderr=logs["whole"], env=env)
    killed = subprocess.Popen(_train_command(recipe_file, tmp_path / "killed"), stdout=subprocess.DEVNULL,
                              stderr=logs["killed"], env=env)
    metrics_file = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and killed.poll() is None:
        if metrics_file.exists() and len(metrics_file.read_text().splitlines()) >= 6:
            break
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "killed.err").read_text()
    assert not (tmp_path / "killed" / "summary.json").exists()  # it really died mid-run
    resumed = subprocess.run(_train_command(recipe_file, tmp_path / "killed", "--resume"), timeout=240,
                             stdout=subprocess.DEVNULL, stderr=logs["resumed"], env=env)
    assert resumed.returncode == 0, (tmp_path / "resumed.err").read_text()
    assert whole.wait(timeout=240) == 0, (tmp_path / "whole.err").read_text()
    for handle in logs.values():
        handle.close()
    expected, got = _comparable(tmp_path / "whole"), _comparable(tmp_path / "killed")
    assert [r["step"] for r in got] == list(range(15))
    assert got == expected
    assert got[1]["actor/lr"] == 0.0 and got[5]["actor/lr"] == pytest.approx(recipe.lr / 2)
    assert got[9]["actor/lr"] == got[14]["actor/lr"] == pytest.approx(recipe.lr)
    log = (tmp_path / "killed" / "train.log").read_text()
    assert "resumed from" in log


def test_cli_train_defaults_to_the_toy_demo_and_maps_outcomes_to_exit_codes(monkeypatch, tmp_path) -> None:
    from justrl import cli

    seen = []

    def fake_train(recipe, run_dir=None, resume=False, **kwargs):
        seen.append((recipe, run_dir, resume))
        return trainer.TrainResult(str(run_dir), 1, outcome, None, None, 0.0)

    monkeypatch.setattr(trainer, "train", fake_train)
    outcome = "finished"
    assert cli.main(["train"]) == 0 and seen[-1][0] == R.load("toy") and seen[-1][2] is False
    assert cli.main(["train", "--recipe", "toy", "lr=1e-4", "--run-dir", str(tmp_path)]) == 0
    assert seen[-1][0].lr == 1e-4 and seen[-1][1] == str(tmp_path)
    outcome = "interrupted"
    assert cli.main(["train", "--run-dir", str(tmp_path), "--resume"]) == 130
    assert seen[-1][0] is None and seen[-1][2] is True  # the run directory's own recipe
    outcome = "non-finite"
    assert cli.main(["train"]) == 1
