"""Ablations: the recipe next to variants that change one thing.

The paper's two ablations both hurt: adding an explicit length penalty (DAPO's soft overlong
penalty over the last 4,096 of 15,360 response tokens) and swapping the strict verifier for a more
lenient one. Each variant is data — a name, what it changes and why — applied as recipe overrides,
so the same variant runs on the native engine here or is rendered for verl.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl import recipe as recipe_mod
from justrl.dynamics import metrics
from justrl.recipe import Recipe

# The paper's overlong window relative to its response budget: 4,096 of 15,360 tokens.
PAPER_OVERLONG_FRACTION = 4096 / 15360


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    changes: Callable[[Recipe], dict[str, Any]]
    """Recipe overrides, computed from the base recipe (so sizes scale with its budget)."""


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "length-penalty",
            "DAPO soft overlong penalty over the last 4,096/15,360 of the response budget (paper: hurt)",
            lambda r: {"overlong_buffer_tokens": max(1, round(r.max_response_tokens * PAPER_OVERLONG_FRACTION)),
                       "overlong_penalty_factor": 1.0},
        ),
        Variant(
            "lenient-verifier",
            "math-verify equivalence instead of the strict boxed string match (paper: hurt)",
            lambda r: {"verifier": "lenient"},
        ),
        Variant(
            "no-clip-higher",
            "symmetric clipping 0.2/0.2 instead of 0.2/0.28",
            lambda r: {"clip_high": r.clip_low},
        ),
        Variant(
            "seq-mean-loss",
            "sequence-mean-token-mean loss aggregation instead of token-mean",
            lambda r: {"loss_agg": "seq-mean-token-mean"},
        ),
    )
}
PAPER_ABLATIONS = ("length-penalty", "lenient-verifier")


def variant_recipe(base: Recipe, name: str) -> Recipe:
    """``base`` with variant ``name`` applied (``baseline`` returns ``base``)."""
    if name == "baseline":
        return base
    if name not in VARIANTS:
        raise recipe_mod.RecipeError(f"unknown ablation {name!r}; known: baseline, {', '.join(VARIANTS)}")
    changed = recipe_mod.apply(base, VARIANTS[name].changes(base), source=f"ablation {name}")
    changed = recipe_mod.apply(changed, {"name": f"{base.name}+{name}"})
    changed.validate()
    return changed


@dataclass
class AblationRow:
    variant: str
    run_dir: str
    acc_before: float | None
    acc_after: float | None
    score_last: float | None
    entropy_last: float | None
    length_last: float | None


def _series(run_dir: Path, key: str) -> list[float]:
    path = run_dir / "metrics.jsonl"
    rows = metrics.read_jsonl(path) if path.is_file() else []
    return [row[key] for row in rows if key in row]


def _last(run_dir: Path, key: str) -> float | None:
    values = _series(run_dir, key)
    return values[-1] if values else None


def run(base: Recipe, variants: Sequence[str], out_dir: str | Path, *, console: bool = True) -> list[AblationRow]:
    """Train the baseline and each variant with the native engine, one run directory each.

    A variant whose run directory already holds a finished run is not trained again (a crashed or
    interrupted one is resumed), so an interrupted ablation picks up where it stopped.
    """
    from justrl.train import loop as trainer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in ["baseline", *[v for v in variants if v != "baseline"]]:
        recipe = variant_recipe(base, name)
        run_dir = out_dir / name
        summary = run_dir / "summary.json"
        finished = summary.is_file() and json.loads(summary.read_text()).get("stopped") == "finished"
        if not finished:
            resume = (run_dir / "checkpoints").is_dir()
            trainer.train(None if resume else recipe, run_dir, resume=resume, console=console)
        result = json.loads(summary.read_text())
        rows.append(AblationRow(
            variant=name, run_dir=str(run_dir), acc_before=result.get("acc_before"),
            acc_after=result.get("acc_after"), score_last=_last(run_dir, "critic/score/mean"),
            entropy_last=_last(run_dir, "actor/entropy"), length_last=_last(run_dir, "response_length/mean"),
        ))
    write_report(rows, base, out_dir)
    return rows


def write_report(rows: Sequence[AblationRow], base: Recipe, out_dir: Path) -> Path:
    """``ablation.md`` (a table of the final numbers) and ``ablation.png`` (the curves overlaid)."""
    from justrl.dynamics import plots

    fmt = lambda x, pct=False: "—" if x is None else (f"{100 * x:.1f}" if pct else f"{x:.3f}")  # noqa: E731
    lines = [
        f"# Ablations of recipe `{base.name}`", "",
        "| variant | what changes | held-out acc before | after | Δ vs baseline | last reward | last entropy | last length |",
        "|---|---|---|---|---|---|---|---|",
    ]
    baseline_after = rows[0].acc_after if rows else None
    baseline_rewards = _series(Path(rows[0].run_dir), "critic/score/mean") if rows else []
    for row in rows:
        what = "the recipe as is" if row.variant == "baseline" else VARIANTS[row.variant].description
        if row.variant != "baseline" and _series(Path(row.run_dir), "critic/score/mean") == baseline_rewards:
            what += " — **identical to the baseline at every step: on this task the change never altered a reward**"
        delta = (None if row.acc_after is None or baseline_after is None or row.variant == "baseline"
                 else row.acc_after - baseline_after)
        lines.append(
            f"| {row.variant} | {what} | {fmt(row.acc_before, True)} | {fmt(row.acc_after, True)} | "
            f"{'—' if delta is None else f'{100 * delta:+.1f}'} | {fmt(row.score_last)} | "
            f"{fmt(row.entropy_last)} | {fmt(row.length_last)} |")
    lines += ["", "Accuracies in percent, sampled at the recipe's validation settings. One seed per variant: "
              "differences of a few points on a toy task are within seed noise; repeat with `seed=` to judge.",
              "", "![curves](ablation.png)", ""]
    report = out_dir / "ablation.md"
    report.write_text("\n".join(lines))
    runs = [plots.load_run(row.run_dir, row.variant) for row in rows]
    plots.plot_runs(runs, out_dir / "ablation.png", title=f"ablations of {base.name}")
    return report
