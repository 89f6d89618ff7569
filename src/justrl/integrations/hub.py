"""``justrl card``: a model card (``README.md``) for a trained policy folder, and its upload.

The card carries what the weights alone do not: the recipe and its deviations from the paper's,
the nine-benchmark table with its 95% intervals (from a ``justrl eval`` folder), the training
curves (``dynamics.png``, copied from the run folder beside ``final/``), and the Hub's
``model-index`` metadata, written by ``huggingface_hub.ModelCardData(eval_results=[EvalResult...])``
so that the Hub (and ``ModelCard.load``) reads the scores. :func:`push` uploads the folder with
``huggingface_hub.HfApi`` (``create_repo`` then ``upload_folder``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from justrl import recipe as recipe_mod
from justrl.errors import DataError

CARD_FILE = "README.md"
FIGURE_FILE = "dynamics.png"
PAPER_URL = "https://arxiv.org/abs/2512.16649"


@dataclass(frozen=True)
class CardSources:
    """Where a card's parts come from: the policy folder, its run folder, an evaluation folder."""

    model_dir: Path
    recipe: recipe_mod.Recipe | None
    run_dir: Path | None
    evaluation: dict[str, Any] | None


def find_sources(model_dir: str | Path, eval_dir: str | Path | None = None) -> CardSources:
    """The policy folder (a ``final/`` or any ``from_pretrained`` folder), the recipe of the run it
    came from (``recipe.yaml`` beside it or in it) and the evaluation summary (``summary.json``)."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder}: no config.json; not a model folder (give a run's final/ or a saved policy)")
    run_dir = next((d for d in (folder, folder.parent) if (d / "recipe.yaml").is_file()), None)
    recipe = None
    if run_dir is not None:
        data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
        recipe = recipe_mod.apply(recipe_mod.Recipe(), data, source=str(run_dir / "recipe.yaml"))
    evaluation = None
    if eval_dir is not None:
        summary = Path(eval_dir) / "summary.json"
        if not summary.is_file():
            raise DataError(f"{eval_dir}: no summary.json; give a folder justrl eval wrote")
        try:
            evaluation = json.loads(summary.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DataError(f"{summary}: not valid JSON ({exc})") from None
        if not isinstance(evaluation, dict) or not isinstance(evaluation.get("benchmarks"), list):
            raise DataError(f"{summary}: no 'benchmarks' list; give a folder justrl eval wrote")
        refuse_stale(Path(eval_dir))
    return CardSources(folder, recipe, run_dir, evaluation)


def refuse_stale(eval_dir: Path) -> None:
    """Refuse an evaluation folder whose generation files changed after they were graded (the
    summary's scores would not be theirs): the staleness record of ``grading_results.json``."""
    from justrl.evaluate import grading

    results_path = eval_dir / grading.RESULTS_FILE
    if not results_path.is_file():
        return
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{results_path}: not valid JSON ({exc})") from None
    stale = grading.stale_file(eval_dir, results) if isinstance(results, dict) else None
    if stale is not None:
        raise DataError(f"{results_path} is stale: {stale}; its summary.json would put scores on the card "
                        f"that are not the files' (rerun `justrl eval` with the same --out, or "
                        f"`justrl grade {eval_dir}` and then eval)")


def eval_results(evaluation: dict[str, Any], model_name: str) -> list[Any]:
    """One ``EvalResult`` per benchmark (avg@N, in %), for the card's ``model-index``."""
    from huggingface_hub import EvalResult

    results = []
    for b in evaluation["benchmarks"]:
        n = b.get("samples_per_problem")
        results.append(EvalResult(
            task_type="text-generation", task_name="Math reasoning",
            dataset_type=str(b["name"]), dataset_name=str(b["name"]), dataset_split="test",
            metric_type=f"avg@{n}", metric_name=f"avg@{n} (%)", metric_value=round(float(b["score"]), 2),
            metric_args={"ci95": [round(float(b["ci_low"]), 2), round(float(b["ci_high"]), 2)],
                         "problems": b.get("problems"), "samples_per_problem": n},
        ))
    return results


def _recipe_section(recipe: recipe_mod.Recipe | None) -> list[str]:
    if recipe is None:
        return ["## Training", "", "No `recipe.yaml` was found beside this folder: the recipe is unknown.", ""]
    lines = ["## Training", "",
             f"Trained with the JustRL recipe ([arXiv 2512.16649]({PAPER_URL})): plain GRPO, no KL, no entropy "
             f"bonus; {recipe.prompts_per_step} prompts x {recipe.rollouts_per_prompt} rollouts a step, "
             f"lr {recipe.lr:g}, clip {recipe.clip_low:g}/{recipe.clip_high:g}, dual-clip {recipe.clip_c:g}, "
             f"{recipe.loss_agg} loss, reward `{recipe.verifier}` ({recipe.reward_correct:+g} / "
             f"{recipe.reward_incorrect:+g}), {recipe.total_steps} steps, base model `{recipe.model}`, "
             f"data `{recipe.train_data}`.", ""]
    deviations = recipe_mod.diff_from_paper(recipe)
    if deviations:
        lines += ["Deviations from the paper's recipe:", "", "| field | here | paper |", "|---|---|---|"]
        lines += [f"| `{k}` | `{ours!r}` | `{paper!r}` |" for k, (ours, paper) in deviations.items()]
    else:
        lines.append("No deviation from the paper's recipe.")
    return [*lines, ""]


def _eval_section(evaluation: dict[str, Any] | None) -> list[str]:
    if evaluation is None:
        return []
    lines = ["## Evaluation", "",
             "avg@N in %, with 95% bootstrap intervals over problems (`justrl eval`).", "",
             "| benchmark | N | problems | avg@N | 95% CI |", "|---|---|---|---|---|"]
    for b in evaluation["benchmarks"]:
        lines.append(f"| {b['name']} | {b.get('samples_per_problem')} | {b.get('problems')} | {float(b['score']):.2f} | "
                     f"{float(b['ci_low']):.2f} - {float(b['ci_high']):.2f} |")
    if evaluation.get("average") is not None:
        low, high = evaluation.get("average_ci") or (float("nan"), float("nan"))
        lines.append(f"| **average** | | | {float(evaluation['average']):.2f} | {low:.2f} - {high:.2f} |")
    settings = evaluation.get("settings", {})
    keys = ("temperature", "top_p", "max_tokens", "grader")
    if any(k in settings for k in keys):
        lines += ["", "Settings: " + ", ".join(f"{k}={settings[k]}" for k in keys if k in settings) + "."]
    return [*lines, ""]


def write_card(model_dir: str | Path, eval_dir: str | Path | None = None) -> Path:
    """Write ``MODEL_DIR/README.md`` (and copy the run's ``dynamics.png`` beside it); return its path."""
    from huggingface_hub import ModelCard, ModelCardData

    sources = find_sources(model_dir, eval_dir)
    name = sources.run_dir.name if sources.run_dir is not None else sources.model_dir.name
    figure = None
    if sources.run_dir is not None and (sources.run_dir / FIGURE_FILE).is_file():
        figure = sources.model_dir / FIGURE_FILE
        if sources.run_dir != sources.model_dir:
            shutil.copyfile(sources.run_dir / FIGURE_FILE, figure)
    recipe = sources.recipe
    data = ModelCardData(
        model_name=name, library_name="transformers", pipeline_tag="text-generation",
        tags=["justrl", "grpo", "math", "reinforcement-learning"],
        base_model=recipe.model if recipe is not None and "/" in recipe.model else None,
        eval_results=eval_results(sources.evaluation, name) if sources.evaluation else None,
    )
    body = [f"# {name}", "",
            "A math-reasoning policy trained with justrl and the JustRL recipe.", "",
            *_recipe_section(recipe), *_eval_section(sources.evaluation)]
    if figure is not None:
        body += ["## Training dynamics", "", f"![entropy, reward, length and validation curves]({FIGURE_FILE})", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    path = sources.model_dir / CARD_FILE
    card.save(path)
    return path


def push(model_dir: str | Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload the policy folder (card included) to the Hub repository ``repo_id``; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(model_dir),
                      commit_message="justrl: policy and model card")
    return f"https://huggingface.co/{repo_id}"
