"""What an evaluation shows: ``report.md`` (settings, the score table with its intervals next to
the published rows, which grading stage settled what), ``summary.json``, the ``scores.png`` chart
and the score table a command prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from justrl.evaluate.grading import RESULTS_FILE
from justrl.evaluate.plan import fill_template
from justrl.evaluate.scores import Comparison, Summary
from justrl.io import atomic_write_json, atomic_write_text
from justrl.verifiers import STAGE_JUDGE, STAGE_LENIENT, STAGE_RELEASE

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
CHART_FILE = "scores.png"


def write_report(summary: Summary, out_dir: Path) -> tuple[Path, Path]:
    """Write ``summary.json``, ``report.md`` and ``scores.png`` into ``out_dir``; returns the
    report's and the chart's paths."""
    atomic_write_json(out_dir / SUMMARY_FILE, summary.to_dict())
    report = atomic_write_text(out_dir / REPORT_FILE, render_report(summary))
    return report, plot_scores(summary, out_dir / CHART_FILE)


def _show_template(template: str) -> str:
    """The user message a template makes, with ``{problem}`` left in (newlines shown as ``\\n``)."""
    return fill_template(template, "{problem}").replace("\n", "\\n")


def _cell(comp: Comparison) -> str:
    if comp.published is None:
        return "–"
    mark = " †" if comp.outside_ci else ""
    return f"{comp.published:.2f} ({comp.difference:+.1f}){mark}"


def _budget_note(budget: dict[str, Any] | None) -> str:
    """What the context really left, when it left some responses less than ``max_tokens``."""
    if not budget or not budget.get("truncated"):
        return ""
    return (f" (**truncated**: the longest prompt, {budget['longest_prompt_label']}, leaves "
            f"{budget['effective_max_tokens']} before the model's {budget['context']}-token context)")


def render_report(summary: Summary) -> str:
    """``report.md``: settings, the score table with CIs next to the published rows, notes."""
    s = summary.settings
    lines = [f"# Evaluation of `{summary.model}`", ""]
    lines += [
        "| setting | value |", "|---|---|",
        f"| backend | {s.get('backend')} (workers: {s.get('workers')}) |",
        f"| prompt | `{_show_template(str(s.get('prompt')))}` as one user turn through the chat template |",
        f"| sampling | temperature {s.get('temperature')}, top-p {s.get('top_p')}, "
        f"max new tokens {s.get('max_tokens')}{_budget_note(s.get('budget'))} |",
        f"| samples per problem | {s.get('n') or 'the paper’s N per benchmark'} (one seed per sample, "
        f"drawn from seed {s.get('seed')}) |",
        f"| grader | {s.get('grader')}"
        + (f" + judge `{s.get('judge_model')}`" if s.get("judge_model") else " (no model judge)") + " |",
    ]
    if s.get("limit"):
        lines.append(f"| problems | the first {s['limit']} of each benchmark only |")
    if s.get("nonrelease_files"):
        lines.append(f"| data | **differs from the release's files**: {', '.join(s['nonrelease_files'])} |")
    lines += ["", "## Scores", ""]
    lines.append(
        "avg@N in percent, with a 95% bootstrap confidence interval over problems (each problem's "
        "samples resampled together; 10,000 resamples unless set otherwise). Published scores are "
        "shown as `published (ours − published)`; † marks a published score outside our interval "
        "(none is marked where the interval has no width: one problem, or every problem scored alike)."
    )
    lines.append("")
    header = ["benchmark", "N", "problems", "ours", "95% CI"] + [r.model for r in summary.published]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")
    comps = {r.model: summary.comparisons(r) for r in summary.published}
    for sc in summary.scores:
        row = [sc.name, str(sc.samples_per_problem), str(sc.problems), f"{sc.score:.2f}",
               f"[{sc.ci_low:.1f}, {sc.ci_high:.1f}]"]
        row += [_cell(comps[r.model][sc.name]) for r in summary.published]
        lines.append("| " + " | ".join(row) + " |")
    if summary.average is not None and summary.average_ci is not None:
        row = ["**average**", "", "", f"**{summary.average:.2f}**",
               f"[{summary.average_ci[0]:.1f}, {summary.average_ci[1]:.1f}]"]
        row += [_cell(comps[r.model]["average"]) for r in summary.published]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if summary.published:
        lines.append(
            "A published score outside our interval (†) means the difference is larger than the "
            "problem-sampling noise of this evaluation (at the 95% level); inside, this evaluation "
            "cannot tell the two apart. The published tables give no intervals of their own."
        )
    else:
        lines.append("No published rows shown (family: none).")
    lines += _grading_section(summary.grading)
    lines += ["", f"Chart: `{CHART_FILE}`. Raw samples: the `.jsonl` files; grades: `{RESULTS_FILE}`.", ""]
    return "\n".join(lines)


def _grading_section(grading: dict[str, Any]) -> list[str]:
    """Which stage settled the answers, per benchmark (from ``grading_results.json``)."""
    files = grading.get("files") or {}
    if not files:
        return []
    grader = grading.get("grader") or {}
    lines = ["", "## Grading", ""]
    judge = grader.get("judge")
    how = f" with judge `{judge}`." if judge else f"; {grader.get('note') or 'no model judge'}."
    lines.append(f"Grader `{grader.get('verifier')}`" + how)
    lines.append("")
    stages = [STAGE_RELEASE, STAGE_LENIENT] + ([STAGE_JUDGE] if judge else [])
    stages += sorted({st for m in files.values() for st in m.get("stages", {})} - set(stages))
    head = ["benchmark", "responses"] + [f"right by {st}" for st in stages] + [
        "wrong", "no \\boxed", "undecided", "judge calls (saved)", "avg length", "pass@n"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "---:|" * (len(head) - 1))
    for name, m in files.items():
        st = m.get("stages", {})
        wrong = sum(c.get("incorrect", 0) for c in st.values())
        row = [name, str(m.get("responses"))] + [str(st.get(x, {}).get("correct", 0)) for x in stages] + [
            str(wrong), str(m.get("format_error_rollouts")), str(m.get("undecided", m.get("timeouts"))),
            f"{m.get('judge_calls')} ({m.get('judge_calls_saved')})",
            f"{m.get('avg_output_length', 0):.0f} {m.get('avg_output_length_unit', '')}",
            "—" if m.get("best_score") is None else f"{100 * m['best_score']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    undecided = {name: m for name, m in files.items() if m.get("undecided")}
    if undecided:
        lines += ["", "Undecided answers got no verdict within the time bound, nor on a retry with a larger "
                  "one: they are left out of the scores, never counted wrong. With all of them wrong / all "
                  "right, avg@n would be: " + "; ".join(
                      f"{name} {100 * m['mean_score_range'][0]:.1f}-{100 * m['mean_score_range'][1]:.1f}"
                      for name, m in undecided.items() if "mean_score_range" in m) + "."]  # fmt: skip
    return lines


def plot_scores(summary: Summary, path: str | Path) -> Path:
    """Bar chart: ours with 95% CI error bars, next to the published rows, per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.name for s in summary.scores]
    ours = [s.score for s in summary.scores]
    lows = [s.score - s.ci_low for s in summary.scores]
    highs = [s.ci_high - s.score for s in summary.scores]
    if summary.average is not None and summary.average_ci is not None:
        labels.append("Average")
        ours.append(summary.average)
        lows.append(summary.average - summary.average_ci[0])
        highs.append(summary.average_ci[1] - summary.average)
    series = [(f"{Path(summary.model.rstrip('/')).name} (ours, 95% CI)", ours, (lows, highs))]
    for row in summary.published:
        vals = [row.scores.get(s.name) for s in summary.scores]
        if summary.average is not None:
            vals.append(row.average_over([s.name for s in summary.scores]))
        series.append((row.model, [np.nan if v is None else v for v in vals], None))
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(16.0, 4.0 + 1.2 * len(labels)), 5.5))
    for i, (name, values, err) in enumerate(series):
        pos = x - 0.4 + width * (i + 0.5)
        if err is None:
            ax.bar(pos, values, width, label=name, alpha=0.75)
        else:
            ax.bar(pos, values, width, label=name, color="black", alpha=0.85,
                   yerr=np.array(err), capsize=3, ecolor="tab:red")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("avg@N (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{Path(summary.model.rstrip('/')).name}: JustRL benchmarks")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_table(summary: Summary, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.model}: avg@N (%) with 95% bootstrap CI")
    for col in ("benchmark", "N", "problems", "ours", "95% CI"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for r in summary.published:
        table.add_column(r.model, justify="right")
    comps = {r.model: summary.comparisons(r) for r in summary.published}
    for sc in summary.scores:
        table.add_row(sc.name, str(sc.samples_per_problem), str(sc.problems), f"{sc.score:.2f}",
                      f"[{sc.ci_low:.1f}, {sc.ci_high:.1f}]",
                      *[_cell(comps[r.model][sc.name]) for r in summary.published])
    if summary.average is not None and summary.average_ci is not None:
        table.add_row("average", "", "", f"{summary.average:.2f}",
                      f"[{summary.average_ci[0]:.1f}, {summary.average_ci[1]:.1f}]",
                      *[_cell(comps[r.model]["average"]) for r in summary.published])
    console.print(table)

