"""The launch justrl renders for a GPU cluster is importable where the ``verl`` extra is installed:
verl 0.9.1's default trainer (V1) imports ``transfer_queue``, which plain ``verl==0.9.1`` lacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from justrl import recipe as R
from justrl.errors import BackendUnavailable
from justrl.verl_engine import imports, launcher, make_plan


@pytest.mark.verl_cpu  # the verl extra's environment: verl, TransferQueue and vLLM (.venv-verl here)
def test_the_rendered_paper_launch_imports_verls_trainer(tmp_path) -> None:
    recipe = R.load("justrl-deepseek-1.5b")
    plan = make_plan(recipe, tmp_path / "run", nnodes=4, gpus_per_node=8)
    assert launcher.launch(recipe, plan, dry_run=True) == 0  # check_launch_imports ran (vLLM: a note)
    script = (tmp_path / "run" / launcher.SCRIPT_NAME).read_text()
    python = script.split(f" -m {launcher.ENTRYPOINT} ", 1)[0].rsplit("\n", 1)[-1].strip()
    assert python == sys.executable
    # the script's interpreter: verl's entry point with the rendered overrides (Hydra composes them
    # and prints the job config, without starting Ray), then what its V1 task runner imports
    overrides = launcher.overrides(recipe, plan)
    shown = subprocess.run([python, "-m", launcher.ENTRYPOINT, "--cfg", "job", *overrides],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "use_v1: true" in shown.stdout
    runner = subprocess.run([python, "-c", "import transfer_queue; from verl.trainer.ppo.v1 import "
                             "get_trainer_cls; print(get_trainer_cls('sync').__name__)"],
                            capture_output=True, text=True, timeout=300)
    assert runner.returncode == 0, runner.stderr[-2000:]


def test_a_missing_trainer_import_is_one_line(monkeypatch) -> None:
    missing = imports.Needed("justrl_no_such_module_for_test", "TransferQueue", "the V1 trainer imports it")
    monkeypatch.setattr(imports, "TRAINER_IMPORTS", (missing,))
    with pytest.raises(BackendUnavailable) as info:
        imports.check_launch_imports()
    message = str(info.value)
    assert "\n" not in message
    assert "justrl_no_such_module_for_test" in message and "pip install 'justrl[verl]'" in message


def test_a_missing_vllm_stops_a_real_launch_and_is_noted_in_a_dry_run(monkeypatch, messages) -> None:
    monkeypatch.setattr(imports, "TRAINER_IMPORTS", ())
    monkeypatch.setattr(imports, "ROLLOUT", imports.Needed("justrl_no_such_vllm", "vllm", "verl samples with vLLM"))
    with pytest.raises(BackendUnavailable, match="justrl_no_such_vllm|vllm"):
        imports.check_launch_imports(rollout=True)
    imports.check_launch_imports(rollout=False)
    assert any("verl samples with vLLM" in r.getMessage() for r in messages.records)
