"""What ``justrl compare`` shows: a terminal table, a markdown report and a forest plot of the
differences (one row per benchmark, each folder against the first, with its interval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from justrl.evaluate.compare import AVERAGE, Comparison, Difference
from justrl.io import atomic_write_text

CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "none": "no correction"}
HEADER = ["benchmark", "problems", "N", "{a}", "{b}", "{b} − {a}", "95% CI", "p", "p ({c})", "significant"]


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _cells(row: Difference) -> list[str]:
    n = row.samples[0] if row.samples[0] == row.samples[1] else f"{row.samples[0]} / {row.samples[1]}"
    return [row.benchmark, str(row.problems), n, f"{row.baseline_score:.2f}", f"{row.other_score:.2f}",
            f"{row.difference:+.2f}", f"[{row.ci_low:+.1f}, {row.ci_high:+.1f}]", _p(row.p_value),
            _p(row.p_adjusted), "yes" if row.significant else ""]


def _header(comparison: Comparison, other: str) -> list[str]:
    names = {"a": comparison.labels[0], "b": other, "c": CORRECTION_NAMES[comparison.correction]}
    return [h.format(**names) for h in HEADER]


def method_lines(comparison: Comparison) -> list[str]:
    """How the numbers were made, in a few sentences (report and terminal)."""
    c = comparison
    lines = [
        f"Differences in avg@N (points) on the problems every folder holds, each folder against "
        f"{c.labels[0]}; {100 * c.level:.0f}% paired percentile-bootstrap intervals ({c.resamples:,} "
        f"resamples of the problems, each problem's samples together, the same problems for every "
        f"folder; seed {c.seed}). p: {c.test}, {c.resamples:,} random sign flips.",
    ]
    if len(c.labels) > 2:
        lines.append(f"p ({CORRECTION_NAMES[c.correction]}): adjusted over the {len(c.labels) - 1} "
                     "folders compared with the first, within each row; rows are not adjusted for each other.")
    else:
        lines.append(f"p ({CORRECTION_NAMES[c.correction]}) = p: one comparison per row needs no adjustment.")
    lines.append(f"significant: adjusted p below {1 - c.level:.2f}. The average weighs benchmarks equally.")
    for name, held in c.left_out.items():
        lines.append(f"Not compared: {name} (only in {', '.join(held)}).")
    for name, extra in c.problems_left_out.items():
        parts = ", ".join(f"{label} {count}" for label, count in extra.items() if count)
        lines.append(f"{name}: problems outside the shared set left out ({parts}).")
    return lines


def render_markdown(comparison: Comparison, chart: str | None = None) -> str:
    c = comparison
    lines = [f"# Paired comparison against `{c.labels[0]}`", "", "| folder | path | model |", "|---|---|---|"]
    lines += [f"| {label} | `{path}` | {model or '–'} |" for label, path, model in zip(c.labels, c.folders, c.models)]
    grader = c.settings["grader"]
    lines += ["", f"Grader `{grader['verifier']}`" + (f" with judge `{grader['judge']}`" if grader["judge"] else
                                                     " (no model judge)") + "; sampling per benchmark as the "
              "file names say, the same in every folder:", ""]
    lines += [f"- {name}: temperature {s['temperature']}, top-p {s['top_p']}, max tokens {s['max_tokens']}"
              for name, s in c.settings["sampling"].items()]
    for other in c.labels[1:]:
        head = _header(c, other)
        lines += ["", f"## {other} − {c.labels[0]}", "", "| " + " | ".join(head) + " |",
                  "|---|" + "---:|" * (len(head) - 2) + "---|"]
        for row in (r for r in c.rows if r.other == other):
            cells = _cells(row)
            if row.benchmark == AVERAGE:
                cells = [f"**{x}**" if x else x for x in cells[:-1]] + cells[-1:]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- {line}" for line in method_lines(c))]
    if chart:
        lines += ["", f"![differences]({chart})"]
    return "\n".join(lines) + "\n"


def print_table(comparison: Comparison, console: Any) -> None:
    from rich.table import Table

    c = comparison
    for other in c.labels[1:]:
        table = Table(title=f"{other} − {c.labels[0]}: avg@N (%)")
        for i, col in enumerate(_header(c, other)):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in (r for r in c.rows if r.other == other):
            table.add_row(*_cells(row), end_section=row.benchmark == c.benchmarks[-1])
        console.print(table)
    for line in method_lines(c):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def plot_differences(comparison: Comparison, path: str | Path) -> Path:
    """One row per benchmark (the average last): each folder's difference from the first with its
    interval; filled markers are significant after the correction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = comparison
    names = [*c.benchmarks, AVERAGE]
    others = c.labels[1:]
    height = max(2.8, 1.4 + 0.45 * len(names) * max(1.0, 0.7 * len(others)))
    fig, ax = plt.subplots(figsize=(8.0, height))
    step = 0.6 / len(others)
    for k, other in enumerate(others):
        color = f"C{k}"
        for i, name in enumerate(names):
            row = next(r for r in c.rows if r.other == other and r.benchmark == name)
            y = i + (k - (len(others) - 1) / 2) * step
            ax.errorbar(row.difference, y, xerr=[[row.difference - row.ci_low], [row.ci_high - row.difference]],
                        fmt="o", color=color, mfc=color if row.significant else "white", capsize=3,
                        label=f"{other} − {c.labels[0]}" if i == 0 else None)
            p = _p(row.p_adjusted)
            ax.annotate(f"p{p}" if p.startswith("<") else f"p={p}", (row.ci_high, y), xytext=(5, 0),
                        textcoords="offset points", va="center", fontsize=7, color=color)
    ax.margins(x=0.15)
    left, right = ax.get_xlim()
    ax.set_xlim(min(left, -1.0), max(right, 1.0))  # at least +-1 point, even when nothing differs
    ax.axvline(0.0, color="black", lw=0.8)
    ax.axhline(len(names) - 1.5, color="grey", lw=0.5, ls=":")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(f"difference in avg@N (points), {100 * c.level:.0f}% paired bootstrap interval")
    what = f"{others[0]} − {c.labels[0]}" if len(others) == 1 else f"Against {c.labels[0]}"
    ax.set_title(f"{what} (filled: significant, {CORRECTION_NAMES[c.correction]})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(others) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def write(comparison: Comparison, markdown_path: str | Path) -> tuple[Path, Path]:
    """The markdown report at ``markdown_path`` and the figure beside it (same name, ``.png``)."""
    md = Path(markdown_path)
    md.parent.mkdir(parents=True, exist_ok=True)
    chart = plot_differences(comparison, md.with_suffix(".png"))
    atomic_write_text(md, render_markdown(comparison, chart.name))
    return md, chart
