"""Re-measure the speed benchmarks and rewrite the README's speed table from what they printed.

    python benchmarks/readme_speed_table.py [--only step_vs_trl ...] [--render]

Each script runs in its own process, ``runs`` times in a row (``step_vs_trl``: 3, as its goal is
stated); every run's ``ratio ...`` last line, and the lines of the last run that carry figures, are kept in ``benchmarks/speed_figures.json`` with the date, the machine's core count, its
load average before and after, and the commit measured (``+dirty`` when ``src/`` had uncommitted
changes). The table between the README's ``speed-table`` markers is then written from that file:
a figure whose commit does not contain the last commit touching ``src/`` (or was measured on a
dirty tree) is marked *older than the code*. ``--only`` re-measures some scripts and keeps the
others' records; ``--render`` re-measures nothing (just re-marks and rewrites the table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "benchmarks" / "speed_figures.json"
BEGIN, END = "<!-- speed-table:begin -->", "<!-- speed-table:end -->"


@dataclass(frozen=True)
class Benchmark:
    script: str
    compares: str
    goal: str
    figure_prefixes: tuple[str, ...]
    """Lines of its output (besides the ratio) that go into the table."""
    runs: int = 1
    """Runs in a row, each in a fresh process; the table shows every run's ratio."""


BENCHMARKS = {
    "step_vs_trl": Benchmark(
        "benchmarks/step_vs_trl.py",
        "seconds per GRPO step, native engine vs TRL `GRPOTrainer` (same tiny model, prompts, 32 x 8 "
        "rollouts, 24 new tokens, 4 updates a step, beta 0, clip 0.2 / 0.28, token-mean), alternating in "
        "one process and one OS thread", "<= 0.35, three runs in a row",
        ("native:", "trl:", "native phases", "trl phases", "native torch", "trl torch"), runs=3),
    "grading_throughput": Benchmark("benchmarks/grading_throughput.py",
                                    "responses/s, `justrl-eval` vs Math-Verify", ">= 8", ()),
    "eval_throughput": Benchmark("benchmarks/eval_throughput.py",
                                 "generated tokens/s, `justrl eval --backend hf` vs a plain `model.generate` loop",
                                 ">= 1.0", ()),
}


@dataclass
class Figure:
    ratio_line: str
    figures: list[str]
    date: str
    cores: int
    load_before: list[float]
    load_after: list[float]
    commit: str
    dirty: bool
    ratio_lines: list[str] | None = None
    """Every run's last line (``ratio_line`` is the last run's)."""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def measure(name: str, bench: Benchmark) -> Figure:
    load_before = [round(x, 2) for x in os.getloadavg()]
    commit, dirty = git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--", "src"))
    env = os.environ | {"PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ratios: list[str] = []
    for k in range(bench.runs):
        run = subprocess.run([sys.executable, str(ROOT / bench.script)], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"{bench.script}: exit {run.returncode}: "
                             f"{(run.stderr.strip().splitlines() or [''])[-1]}")
        lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
        ratio = [line for line in lines if line.startswith("ratio ")]
        if not ratio:
            raise SystemExit(f"{bench.script}: printed no 'ratio ...' line")
        ratios.append(ratio[-1])
        if bench.runs > 1:
            print(f"  run {k + 1} of {bench.runs}: {ratio[-1]}", flush=True)
    figures = [line for line in lines if line.startswith(bench.figure_prefixes)] if bench.figure_prefixes else []
    return Figure(ratio_line=ratios[-1], ratio_lines=ratios, figures=figures,
                  date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  cores=os.cpu_count() or 0, load_before=load_before,
                  load_after=[round(x, 2) for x in os.getloadavg()], commit=commit, dirty=dirty)


def older_than_code(figure: Figure) -> bool:
    """Whether ``src/`` changed after the commit the figure measured (or it measured a dirty tree)."""
    last_src = git("log", "-1", "--format=%H", "--", "src")
    if figure.dirty:
        return True
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", last_src, figure.commit], cwd=ROOT,
                              capture_output=True)
    return ancestor.returncode != 0


def table(records: dict[str, Figure]) -> str:
    rows = ["| script | what it compares | last line (and figures) | measured | goal |",
            "|---|---|---|---|---|"]
    for name, bench in BENCHMARKS.items():
        figure = records.get(name)
        if figure is None:
            rows.append(f"| `{bench.script}` | {bench.compares} | not measured yet | | {bench.goal} |")
            continue
        ratios = figure.ratio_lines or [figure.ratio_line]
        shown = (", ".join(f"`{line}`" for line in ratios)
                 + (f" ({len(ratios)} runs in a row; figures of the last)" if len(ratios) > 1 else "")
                 + "".join(f"<br>{line}" for line in figure.figures)).replace("|", "\\|")  # a cell's pipes
        stale = " **older than the code** (src/ changed since)" if older_than_code(figure) else ""
        when = (f"{figure.date}, commit {figure.commit[:7]}{'+dirty' if figure.dirty else ''}, "
                f"{figure.cores} cores, load {' / '.join(map(str, figure.load_before))} before, "
                f"{' / '.join(map(str, figure.load_after))} after{stale}")
        rows.append(f"| `{bench.script}` | {bench.compares} | {shown} | {when} | {bench.goal} |")
    return "\n".join(rows)


def rewrite_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{README}: no {BEGIN} ... {END} markers around the speed table")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="re-measure only these")
    parser.add_argument("--render", action="store_true", help="re-measure nothing; rewrite the table")
    args = parser.parse_args()
    records = ({name: Figure(**row) for name, row in json.loads(FIGURES.read_text()).items()}
               if FIGURES.is_file() else {})
    if not args.render:
        for name in args.only or list(BENCHMARKS):
            print(f"running {BENCHMARKS[name].script} ...", flush=True)
            records[name] = measure(name, BENCHMARKS[name])
            print(f"  {records[name].ratio_line}", flush=True)
            FIGURES.write_text(json.dumps({k: asdict(v) for k, v in records.items()}, indent=1) + "\n")
    rewrite_readme(table(records))
    print(f"wrote the speed table in {README}")


if __name__ == "__main__":
    main()
