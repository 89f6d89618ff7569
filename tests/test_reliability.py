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


def _generation(folder: Path, text: str) -> Path:
    """A release-format generation file (n=2) holding ``text``."""
    path = folder / "aime24_t0.7_p0.9_n2-MNT8.jsonl"
    path.write_text(text.replace("{}", json.dumps({"example_id": 0, "prompt": "p", "answer": "5", "seed": 1,
                                                  "response": "\\boxed{5}"})))
    return path


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


Setup = Callable[[Path], object]

CASES: dict[str, tuple[Setup, list[str], list[str]]] = {
    # name: (make the files under tmp, arguments ({} is tmp), fragments of the one-line message)
    "plot a folder without metrics": (lambda t: _metrics(t / "run", None), ["plot", "{}/run"],
                                      ["justrl plot:", "no metrics.jsonl, verl_metrics.jsonl or TensorBoard event files"]),
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
    "train lr=-1e-4": (lambda t: None, ["train", "lr=-1e-4", "--run-dir", "{}/run"],
                       ["justrl train:", "lr must be > 0 (got -0.0001)"]),
    "train verifier=bogus (before any model loads)": (
        lambda t: None, ["train", "verifier=bogus", "--run-dir", "{}/run"], ["verifier must be one of", "'bogus'"]),
    "train model=/nonexistent": (lambda t: None, ["train", "model=/nonexistent", "--run-dir", "{}/run"],
                                 ["justrl train:", "model /nonexistent: no such folder"]),
    "train an offline hub id that is not cached": (
        lambda t: None, ["train", "model=nobody-org/not-cached-model", "--run-dir", "{}/run"],
        ["not in the local Hugging Face cache"]),
    "eval --judge-model /nonexistent (before any generation)": (
        lambda t: None, ["eval", "--model", "{}", "--judge-model", "/nonexistent"],
        ["--judge-model /nonexistent: no such folder"]),
    "eval model=/nonexistent": (lambda t: None, ["eval", "--model", "/nonexistent", "--out", "{}/ev"],
                                ["justrl eval:", "model /nonexistent: no such folder"]),
    "eval an offline hub id that is not cached": (
        lambda t: None, ["eval", "--model", "nobody-org/not-cached-model", "--out", "{}/ev"],
        ["nobody-org/not-cached-model: not a local folder, not in the local Hugging Face cache", "offline"]),
    "eval into a training run's folder": (
        lambda t: _metrics(t / "run", []), ["eval", "--model", "{}", "--out", "{}/run"],
        ["run is a training run's folder (it has metrics.jsonl)"]),
    "eval grader=bogus": (lambda t: None, ["eval", "--model", "/nonexistent", "grader=bogus"],
                          ["unknown grader 'bogus'"]),
    "grade --tokenizer /nonexistent": (lambda t: _generation(t, "{}"), ["grade", "{}", "--tokenizer", "/nonexistent"],
                                       ["justrl grade:", "--tokenizer /nonexistent: no such folder"]),
    "grade an empty generation file": (lambda t: _generation(t, ""), ["grade", "{}"],
                                       ["every generation file is empty or half-written"]),
}
if not _has_cuda():
    CASES["eval device=cuda on a machine without one"] = (
        lambda t: None, ["eval", "--model", "{}", "device=cuda"], ["device='cuda': this machine has 0 CUDA device(s)"])


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


def test_grade_says_a_half_written_file_is_partial(tmp_path: Path) -> None:
    line = json.dumps({"example_id": 0, "prompt": "p", "answer": "5", "seed": 1, "response": "\\boxed{5}"})
    _generation(tmp_path, line + "\n" + line[:20])
    result = run_cli("grade", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PARTIAL, 1 samples, fewer than n=2 for some of its 1 problems; 1 malformed" in result.stdout
    _generation(tmp_path, line[:20])  # cut in its first line: nothing to grade, not 0%
    torn = run_cli("grade", tmp_path, cwd=tmp_path)
    assert torn.returncode == 2 and "Traceback" not in torn.stderr
    assert torn.stderr.strip().splitlines()[-1].endswith("every generation file is empty or half-written "
                                                         "(no complete sample line); nothing to grade")


def test_eval_folder_keeps_one_evaluation(tiny_model: Path, tmp_path: Path) -> None:
    """The paper's suffix typed literally works; another temperature, a second writer, a train run in
    the folder are each refused in one line, and the first evaluation's files stay as they were."""
    from justrl.io import FolderLock

    out = tmp_path / "ev"
    common = ["-q", "--model", tiny_model, "--benchmarks", "AIME24", "--out", out, "n=1", "limit=1",
              "max_tokens=2", "bootstrap=10"]
    first = run_cli("eval", *common, "prompt={problem} Put your final answer within \\boxed{}.", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    sample = json.loads(next(out.glob("*.jsonl")).read_text().splitlines()[0])
    assert sample["prompt"].endswith("Put your final answer within \\boxed{}.")
    written = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}

    other = run_cli("eval", *common, "temperature=0.6", cwd=tmp_path)
    assert_one_line_error(other, "holds another evaluation", "temperature=0.7 there, 0.6 now")
    with FolderLock(out):  # a second process while this one writes
        second = run_cli("eval", *common, cwd=tmp_path)
    assert_one_line_error(second, f"in use by another process (pid {os.getpid()})")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"} == written
    config = json.loads((out / "eval_config.json").read_text())
    assert [b["name"] for b in config["benchmarks"]] == ["AIME24"]


TINY_TRAIN = ["total_steps=2", "prompts_per_step=4", "rollouts_per_prompt=4", "mini_batch_prompts=2",
              "micro_batch_sequences=8", "max_response_tokens=8", "val_before_train=false", "val_every=2",
              "val_max_tokens=8", "val_samples=1", "save_every=1", "loggers=jsonl", "lr=1e-3", "warmup_steps=1"]


def test_train_folder_rules_and_checkpoint_fallback(model_dir: Path, tmp_path: Path) -> None:
    """An eval folder, a locked folder and a bad data path are refused in one line before any step;
    the failed start leaves the folder reusable; a damaged newest checkpoint is skipped on resume."""
    from justrl.io import FolderLock

    run = tmp_path / "run"
    train = ["-q", "train", "--run-dir", run, f"model={model_dir}", *TINY_TRAIN]
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "eval_config.json").write_text("{}")
    assert_one_line_error(run_cli("-q", "train", "--run-dir", tmp_path / "ev", cwd=tmp_path),
                          "justrl train:", "ev is an evaluation's folder (it has eval_config.json)")
    with FolderLock(run):
        assert_one_line_error(run_cli(*train, cwd=tmp_path), f"in use by another process (pid {os.getpid()})")
    bad_data = run_cli(*train, f"train_data={tmp_path / 'missing.parquet'}", cwd=tmp_path)
    assert_one_line_error(bad_data, "missing.parquet")
    assert not (run / "recipe.yaml").exists()

    first = run_cli(*train, cwd=tmp_path)  # the corrected command reuses the folder
    assert first.returncode == 0, first.stderr
    assert (run / "final" / "model.safetensors").is_file()
    newest = run / "checkpoints" / "step_2" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])
    resumed = run_cli("-q", "train", "--run-dir", run, "--resume", "total_steps=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    log = (run / "train.log").read_text()
    assert "step_2 is damaged (model.safetensors does not load" in log and "resumed from" in log
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
