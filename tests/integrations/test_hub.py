"""justrl card: a model card for a trained policy, its eval table in the Hub's metadata, the upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl import evaluate as E
from justrl.cli import main
from justrl.generate.hf import Completion

huggingface_hub = pytest.importorskip("huggingface_hub")


@pytest.fixture(scope="module")
def trained_run(model_dir, tmp_path_factory) -> Path:
    """A real (two-step) native training run of the tiny demo policy, with its final/."""
    from justrl import recipe as R
    from justrl.train import loop as trainer

    recipe = R.load("toy", {"model": str(model_dir), "total_steps": 2, "prompts_per_step": 4,
                            "rollouts_per_prompt": 4, "mini_batch_prompts": 2, "micro_batch_sequences": 8,
                            "max_response_tokens": 8, "val_max_tokens": 8, "val_every": 2, "save_every": 2,
                            "val_samples": 1, "loggers": ["jsonl"], "lr": 1e-3, "warmup_steps": 1})
    run_dir = tmp_path_factory.mktemp("run") / "toy-run"
    trainer.train(recipe, run_dir, console=False)
    assert (run_dir / "final" / "config.json").is_file()
    return run_dir


class Oracle:
    """Right on even-numbered problems, wrong on odd ones."""

    def __init__(self, truths: dict[str, str]) -> None:
        self.truths, self.order = truths, list(truths)

    def generate(self, prompts, params, seeds=None):
        out = []
        for text in prompts:
            problem = next(p for p in self.truths if p in text)
            answer = self.truths[problem] if self.order.index(problem) % 2 == 0 else "-1"
            out.append(Completion(f"\\boxed{{{answer}}}", [1], [], "stop"))
        return out


def test_card_on_a_trained_final_folder_loads_with_its_eval_results(trained_run, data_dir, tmp_path, capsys):
    from justrl.data import benchmarks as B

    final = trained_run / "final"
    truths = {p.prompt: p.ground_truth for p in B.load_problems(B.locate([B.get("AIME24")], data_dir)["AIME24"])}
    config = E.apply_overrides(E.EvalConfig(model=str(final), benchmarks=["AIME24"], data_dir=str(data_dir),
                                            out=str(tmp_path / "eval")), ["n=2", "limit=4", "bootstrap=200"])
    E.run(config, backend=lambda: Oracle(truths))

    assert main(["card", str(final), "--eval", str(tmp_path / "eval")]) == 0
    assert f"wrote {final / 'README.md'}" in capsys.readouterr().out
    card = huggingface_hub.ModelCard.load(final / "README.md")
    [result] = card.data.eval_results
    assert result.dataset_name == "AIME24" and result.metric_type == "avg@2" and result.metric_value == 50.0
    low, high = result.metric_args["ci95"]
    assert low <= 50.0 <= high
    assert "justrl" in card.data.tags and card.data.library_name == "transformers"
    text = card.text
    assert "| AIME24 | 2 | 4 | 50.00 |" in text
    assert "Deviations from the paper's recipe" in text and "| `total_steps` | `2` | `4000` |" in text
    if (trained_run / "dynamics.png").is_file():
        assert (final / "dynamics.png").read_bytes() == (trained_run / "dynamics.png").read_bytes()
        assert "](dynamics.png)" in text


def test_push_uploads_the_folder_with_huggingface_hub(trained_run, monkeypatch, capsys):
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, **kw: calls.append(("create", kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    final = trained_run / "final"
    assert main(["card", str(final), "--push", "me/toy-justrl", "--private"]) == 0
    assert [c for c, _ in calls] == ["create", "upload"]
    assert calls[0][1]["repo_id"] == "me/toy-justrl" and calls[0][1]["private"] is True
    assert calls[1][1]["folder_path"] == str(final) and calls[1][1]["repo_type"] == "model"
    assert huggingface_hub.ModelCard.load(final / "README.md").data.eval_results is None  # no --eval this time
    assert "uploaded" in capsys.readouterr().out


def test_card_refuses_what_is_not_a_model_folder(tmp_path, capsys):
    assert main(["card", str(tmp_path)]) == 2
    assert "not a model folder" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")
    assert main(["card", str(tmp_path), "--eval", str(tmp_path / "nope")]) == 2
    assert "no summary.json" in capsys.readouterr().err
