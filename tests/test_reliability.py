"""Every user error, driven through the real CLI: exit code 2 and one line on stderr, no traceback.

Each case runs ``python -m justrl.cli`` in a subprocess on real files, as a user would, so a
regression anywhere between argument parsing and the error's message shows as a failing test.
Add a case for every bad input a command must refuse (issue 12: "nothing silently wrong").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "justrl.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --- files the cases read -------------------------------------------------------------------------


def _metrics(folder: Path, rows: list[dict] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _healthy(folder: Path) -> Path:
    return _metrics(folder, [{"step": s, "actor/entropy": 0.5, "critic/score/mean": 0.1 * s,
                              "response_length/mean": 20.0} for s in range(1, 7)])


def _math_style(path: Path) -> Path:
    path.write_text(json.dumps({"problem": "What is 2+3?", "solution": "Add: $\\boxed{5}$."}) + "\n")
    return path


def _no_answer_parquet(path: Path) -> Path:
    pq.write_table(pa.table({"question": ["q"], "notes": ["n"]}), path)
    return path


Setup = Callable[[Path], object]

CASES: dict[str, tuple[Setup, list[str], list[str]]] = {
    # name: (make the files under tmp, arguments ({} is tmp), fragments of the one-line message)
    "plot a folder without metrics": (lambda t: _metrics(t / "run", None), ["plot", "{}/run"],
                                      ["justrl plot:", "no metrics.jsonl and no TensorBoard event files"]),
    "plot an empty metrics.jsonl": (lambda t: _metrics(t / "run", []), ["plot", "{}/run", "-o", "{}/x.png"],
                                    ["metrics.jsonl: no step metrics logged yet"]),
    "plot --smooth 1": (_healthy, ["plot", "{}", "--smooth", "1"], ["smoothing weight must be in [0, 1)"]),
    "plot --smooth 1.5": (_healthy, ["plot", "{}", "--smooth", "1.5"], ["(got 1.5)"]),
    "health on a folder without metrics": (lambda t: _metrics(t / "run", None), ["health", "{}/run"],
                                           ["justrl health:", "no metrics.jsonl"]),
    "health on an empty metrics.jsonl": (lambda t: _metrics(t / "run", []), ["health", "{}/run"],
                                         ["no step metrics logged yet"]),
    "health --patience 0": (_healthy, ["health", "{}", "--patience", "0"], ["patience must be", ">= 1 (got 0)"]),
    "health --patience -1": (_healthy, ["health", "{}", "--patience", "-1"], ["(got -1)"]),
    "budget --mfu 0": (lambda t: None, ["budget", "--mfu", "0"], ["justrl budget:", "must be in (0, 1] (got 0)"]),
    "budget --prompt-tokens -5": (lambda t: None, ["budget", "--prompt-tokens", "-5"],
                                  ["mean prompt tokens must be a positive number"]),
    "budget --run-dir that does not exist": (lambda t: None, ["budget", "--run-dir", "{}/gone"],
                                             ["gone: no such run folder"]),
    "data export of a MATH-style file": (lambda t: _math_style(t / "math.jsonl"),
                                         ["data", "export", "{}/math.jsonl", "--out", "{}/o.parquet"],
                                         ["math.jsonl: no answer column", "columns found: problem, solution",
                                          "answer_from=solution"]),
    "data export of a file without an answer column": (
        lambda t: _no_answer_parquet(t / "q.parquet"), ["data", "export", "{}/q.parquet", "--out", "{}/o.parquet"],
        ["q.parquet: no answer column", "columns found: question, notes"]),
    "data export of a missing file": (lambda t: None, ["data", "export", "data/missing.parquet", "--out", "o.parquet"],
                                      ["data/missing.parquet: no such file"]),
    "data export of an empty file": (lambda t: (t / "e.jsonl").write_text(""),
                                     ["data", "export", "{}/e.jsonl", "--out", "{}/o.parquet"], ["e.jsonl: empty file"]),
    "data export of a corrupt parquet": (lambda t: (t / "c.parquet").write_bytes(b"PAR1 not really"),
                                         ["data", "export", "{}/c.parquet", "--out", "{}/o.parquet"],
                                         ["c.parquet: not a readable parquet file"]),
    "data export of a torn JSONL": (lambda t: (t / "t.jsonl").write_text('{"problem": "p", "answer": "1"}\n{"pro'),
                                    ["data", "export", "{}/t.jsonl", "--out", "{}/o.parquet"],
                                    ["t.jsonl: line 2: invalid JSON"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    setup, args, fragments = CASES[case]
    setup(tmp_path)
    result = run_cli(*[a.replace("{}", str(tmp_path)) for a in args], cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written by a refused export


def test_health_exit_codes_tell_healthy_from_alarm(tmp_path: Path) -> None:
    _healthy(tmp_path / "fine")
    _metrics(tmp_path / "collapsed", [{"step": s, "actor/entropy": 0.001} for s in range(1, 4)])
    fine = run_cli("health", tmp_path / "fine", cwd=tmp_path)
    assert fine.returncode == 0 and "healthy over 6 steps" in fine.stdout
    alarm = run_cli("health", tmp_path / "fine", tmp_path / "collapsed", "--patience", "2", "--json", cwd=tmp_path)
    assert alarm.returncode == 1 and alarm.stderr == ""
    assert [r["healthy"] for r in json.loads(alarm.stdout)] == [True, False]


def test_eval_works_offline_without_data_dir(tiny_model: Path, tmp_path: Path) -> None:
    """The benchmark files ship inside the package: no --data-dir, no network, nothing beside the clone."""
    result = run_cli("eval", "--model", tiny_model, "--benchmarks", "AIME24", "--out", tmp_path / "ev",
                     "n=1", "limit=2", "max_tokens=2", "bootstrap=10", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert [b["name"] for b in summary["benchmarks"]] == ["AIME24"] and summary["benchmarks"][0]["problems"] == 2
