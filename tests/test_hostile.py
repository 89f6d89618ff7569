"""Hostile use, driven through the real CLI (issue 22): signals, a file-size limit, a file where a
folder belongs, NaN settings, resuming what cannot be resumed, stale grading folders.

Each case runs ``python -m justrl.cli`` in a subprocess, as a user would, and checks that nothing
is lost and nothing is silently wrong: a signal checkpoints and the run resumes without a step
lost; an operating-system error is one line naming the path and exit 2.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from justrl.dynamics import metrics as metrics_mod

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
       "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "justrl.cli"]


def run_cli(*args: object, cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600, **kwargs)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, no traceback, and the error as the last line (``train`` logs its start above it)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines and lines[-1].startswith("justrl "), (result.returncode, result.stderr)
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def _steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in metrics_mod.read_jsonl(run_dir / "metrics.jsonl")]


def _wait_for_steps(proc: subprocess.Popen, run_dir: Path, count: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (run_dir / "metrics.jsonl").exists() and len([s for s in _steps(run_dir) if s > 0]) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the run never reached step {count} (exit {proc.poll()})")


@pytest.fixture
def recipe_file(tiny_recipe, tmp_path: Path) -> Path:
    """A tiny run that checkpoints only at its end (a signal must make it checkpoint earlier)."""
    path = tmp_path / "recipe.yaml"
    tiny_recipe(total_steps=6, save_every=50, val_every=50, val_before_train=False).save(path)
    return path


# --- 1. SIGTERM and SIGHUP stop training as Ctrl-C does --------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_checkpoints_and_resume_loses_no_step(recipe_file, tmp_path, signum) -> None:
    run_dir = tmp_path / "run"
    err = (tmp_path / "train.err").open("w")
    proc = subprocess.Popen([*CLI, "train", "--recipe", recipe_file, "--run-dir", run_dir], cwd=tmp_path,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=err)
    _wait_for_steps(proc, run_dir, 1)
    proc.send_signal(signum)
    assert proc.wait(timeout=300) == 128 + signum, (tmp_path / "train.err").read_text()
    err.close()
    stopped_at = max(_steps(run_dir))
    assert stopped_at < 6  # it really stopped early ...
    assert (run_dir / "checkpoints" / f"step_{stopped_at}" / "COMPLETE").is_file()  # ... with a checkpoint
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "interrupted" and summary["stop_signal"] == signal.Signals(signum).name
    assert "interrupted: checkpoint of step" in (run_dir / "train.log").read_text()
    resumed = run_cli("train", "--run-dir", run_dir, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _steps(run_dir) == list(range(1, 7))  # every step once: none lost, none repeated


def test_a_second_signal_aborts_at_once_without_a_torn_checkpoint(recipe_file, tmp_path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "train", "--recipe", recipe_file, "--run-dir", run_dir], cwd=tmp_path,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(proc, run_dir, 1)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    # 143 from the second signal's StopSignal; or, where the first one's step and checkpoint were
    # already done and the trainer had given the signals back their default action, death by
    # SIGTERM (-15 here, 143 to a shell). Either way nothing below may be torn.
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    checkpoints = run_dir / "checkpoints"
    folders = list(checkpoints.iterdir()) if checkpoints.exists() else []
    assert all(f.name.startswith("step_") and (f / "COMPLETE").is_file() for f in folders), folders


# --- 2. --resume never truncates or overwrites what it cannot continue ----------------------------


def _run_folder(tiny_recipe, folder: Path, metrics_text: str, checkpoint_step: int | None = None) -> Path:
    """A run folder as a run leaves it: ``recipe.yaml``, ``metrics.jsonl``, maybe a checkpoint."""
    folder.mkdir(parents=True)
    tiny_recipe(total_steps=6, save_every=50, val_every=50, val_before_train=False).save(folder / "recipe.yaml")
    (folder / "metrics.jsonl").write_text(metrics_text)
    if checkpoint_step is not None:
        marked = folder / "checkpoints" / f"step_{checkpoint_step}"
        marked.mkdir(parents=True)
        (marked / "COMPLETE").write_text(f"step {checkpoint_step}\n")
    return folder


def _lines(*steps: int) -> str:
    return "".join(json.dumps({"step": s, "actor/entropy": 0.5}) + "\n" for s in steps)


RESUME_REFUSALS = {
    "steps but no checkpoint": (_lines(1, 2, 3), None, [], ["no complete checkpoint", "step 3"]),
    "torn line in the middle": (_lines(1) + '{"step": 2, "actor/ent\n' + _lines(3), None, [],
                                ["metrics.jsonl:2", "not a JSON line"]),
    "non-object line": (_lines(1) + "[1, 2]\n" + _lines(3), None, [], ["metrics.jsonl:2", "not a JSON object"]),
    "total_steps below the step reached": (_lines(1, 2, 3, 4), 4, ["total_steps=2"], ["total_steps=2", "step 4"]),
}


@pytest.mark.parametrize("case", list(RESUME_REFUSALS))
def test_resume_refuses_what_it_would_destroy(tiny_recipe, tmp_path, case) -> None:
    metrics_text, checkpoint_step, overrides, fragments = RESUME_REFUSALS[case]
    run_dir = _run_folder(tiny_recipe, tmp_path / "run", metrics_text, checkpoint_step)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    result = run_cli("train", "--run-dir", run_dir, "--resume", *overrides, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # nothing truncated, nothing rewritten


def test_resume_of_a_folder_without_steps_starts_the_run(tiny_recipe, tmp_path) -> None:
    run_dir = _run_folder(tiny_recipe, tmp_path / "run", "")
    result = run_cli("train", "--run-dir", run_dir, "--resume", "total_steps=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _steps(run_dir) == [1]


# --- 2. an export never writes onto its input; an export re-exported keeps one suffix -------------


def _problems_file(path: Path) -> Path:
    path.write_text("".join(json.dumps({"problem": f"What is {i}+1?", "answer": str(i + 1)}) + "\n"
                            for i in range(3)))
    return path


def test_export_refuses_its_own_input_a_negative_limit_and_a_non_parquet_name(tmp_path) -> None:
    source = _problems_file(tmp_path / "p.jsonl")
    exported = tmp_path / "e.parquet"
    assert run_cli("data", "export", source, "--out", exported, cwd=tmp_path).returncode == 0
    before = exported.read_bytes()
    assert_one_line_error(run_cli("data", "export", exported, "--out", exported, cwd=tmp_path), "own source")
    assert exported.read_bytes() == before
    assert_one_line_error(run_cli("data", "export", source, "--out", tmp_path / "x.parquet", "--limit", "-1",
                                  cwd=tmp_path), "--limit")
    assert_one_line_error(run_cli("data", "export", source, "--out", tmp_path / "o.jsonl", cwd=tmp_path),
                          "o.jsonl", "Parquet")
    assert not (tmp_path / "o.jsonl").exists()


def test_re_exporting_an_export_writes_the_suffix_once(tmp_path) -> None:
    import pyarrow.parquet as pq

    from justrl.recipe import PROMPT_SUFFIX

    source = _problems_file(tmp_path / "p.jsonl")
    once, twice = tmp_path / "once.parquet", tmp_path / "twice.parquet"
    assert run_cli("data", "export", source, "--out", once, cwd=tmp_path).returncode == 0
    assert run_cli("data", "export", once, "--out", twice, cwd=tmp_path).returncode == 0
    prompts = [row["prompt"][0]["content"] for row in pq.read_table(twice).to_pylist()]
    assert prompts == [row["prompt"][0]["content"] for row in pq.read_table(once).to_pylist()]
    assert all(p.count(PROMPT_SUFFIX) == 1 for p in prompts), prompts


# --- 6. operating-system errors: one line naming the path and the cause, no staging leftovers ------


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]


def test_a_file_where_a_folder_belongs_is_one_line_naming_it(tiny_recipe, recipe_file, tmp_path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    source = _problems_file(tmp_path / "p.jsonl")
    assert_one_line_error(run_cli("data", "export", source, "--out", blocker / "e.parquet", cwd=tmp_path),
                          str(blocker))
    assert_one_line_error(run_cli("train", "--recipe", recipe_file, "--run-dir", blocker / "run", cwd=tmp_path),
                          str(blocker))
    run = tmp_path / "metrics-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(_lines(1, 2, 3))
    assert_one_line_error(run_cli("plot", run, "-o", blocker / "d.png", cwd=tmp_path), str(blocker))


def test_a_file_size_limit_in_export_is_one_line_and_leaves_no_staging_file(tmp_path) -> None:
    source = _problems_file(tmp_path / "p.jsonl")
    out = tmp_path / "out" / "e.parquet"
    result = run_cli("data", "export", source, "--out", out, cwd=tmp_path, preexec_fn=_file_size_limit(512))
    assert_one_line_error(result, "too large")
    assert not out.exists() and _leftovers(tmp_path / "out") == []


def test_a_file_size_limit_during_a_checkpoint_is_one_line_and_leaves_no_staging_folder(recipe_file,
                                                                                        tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("train", "--recipe", recipe_file, "--run-dir", run_dir, "total_steps=1", cwd=tmp_path,
                     preexec_fn=_file_size_limit(48 * 1024))  # metrics and logs fit, the weights do not
    assert_one_line_error(result, "too large", str(run_dir / "checkpoints"))
    assert _leftovers(run_dir) == []


# --- 3. values: NaN and infinities refused where `<= 0` is, before anything is written ------------


@pytest.mark.parametrize("override, fragment", [
    ("lr=nan", "lr must be a finite number"),
    ("temperature=nan", "temperature must be a finite number"),
    ("grad_clip=inf", "grad_clip must be a finite number"),
    ("mini_batch_prompts=0", "mini_batch_prompts must be > 0"),
])
def test_a_bad_number_in_train_is_one_line_and_writes_nothing(recipe_file, tmp_path, override, fragment) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("train", "--recipe", recipe_file, "--run-dir", run_dir, override, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert not run_dir.exists()  # no recipe.yaml to refuse the corrected command with


def test_eval_refuses_a_negative_seed_and_nan_before_generating(tiny_model, tmp_path) -> None:
    for override, fragment in (("seed=-5", "seed must be >= 0"), ("temperature=nan", "finite")):
        out = tmp_path / override.split("=")[0]
        result = run_cli("eval", "--model", tiny_model, "--benchmarks", "AIME24", "--out", out, "n=1", "limit=1",
                         override, cwd=tmp_path)
        assert_one_line_error(result, fragment)
        assert not out.exists() or not list(out.glob("*.jsonl"))  # nothing generated


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_grade_refuses_a_timeout_that_is_not_a_positive_number(tmp_path, timeout) -> None:
    folder = tmp_path / "gen"
    folder.mkdir()
    (folder / "aime24_t0.7_p0.9_n1-MNT8.jsonl").write_text(
        json.dumps({"example_id": 0, "prompt": "p", "answer": "5", "seed": 1, "response": "\\boxed{5}"}) + "\n")
    assert_one_line_error(run_cli("grade", folder, "--timeout", timeout, cwd=tmp_path), "--timeout")
    assert not (folder / "grading_results.json").exists()


# --- 4. health replays see what the trainer saw; JSON never holds NaN -----------------------------


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_health_alarms_on_a_run_the_trainer_stopped_as_non_finite(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "actor/entropy": 0.5, "critic/score/mean": 0.1, "response_length/mean": 20.0,
             "actor/pg_loss": float("nan") if s >= 4 else 0.1} for s in range(1, 7)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # NaN as the trainer writes it
    result = run_cli("health", run, cwd=tmp_path)
    assert result.returncode == 1 and "non-finite" in result.stdout, (result.stdout, result.stderr)
    as_json = run_cli("health", run, "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    report = _strict_json(as_json.stdout)
    assert report[0]["healthy"] is False
    assert run_cli("plot", run, "-o", tmp_path / "d.png", cwd=tmp_path).returncode == 0  # NaN: a gap, not an error


def test_summary_json_holds_null_and_the_reason_for_a_non_finite_value(tmp_path) -> None:
    from justrl import io

    io.atomic_write_json(tmp_path / "summary.json", {"score_last": float("nan"), "steps": 3})
    saved = _strict_json((tmp_path / "summary.json").read_text())
    assert saved == {"score_last": None, "steps": 3, "non_finite": ["score_last"]}


# --- 3. answers that are not text; example ids that are not integers; an empty file --------------


def test_a_float_answer_with_an_integer_value_becomes_the_integer(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"problem": ["What is 2+2?", "Half of 1?"], "answer": [4.0, 0.5]}), source)
    out = tmp_path / "e.parquet"
    assert run_cli("data", "export", source, "--out", out, cwd=tmp_path).returncode == 0
    truths = [row["reward_model"]["ground_truth"] for row in pq.read_table(out).to_pylist()]
    assert truths == ["4", "0.5"]


def test_a_bool_answer_is_refused_naming_the_row(tmp_path) -> None:
    source = tmp_path / "bools.jsonl"
    source.write_text(json.dumps({"problem": "Is 2 even?", "answer": True}) + "\n")
    assert_one_line_error(run_cli("data", "export", source, "--out", tmp_path / "e.parquet", cwd=tmp_path),
                          "bools.jsonl", "boolean")


def _grade_folder(tmp_path: Path, lines: list[dict]) -> Path:
    folder = tmp_path / "gen"
    folder.mkdir()
    (folder / "aime24_t0.7_p0.9_n2-MNT8.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def test_an_example_id_that_is_not_an_integer_is_not_merged_into_another(tmp_path) -> None:
    row = {"prompt": "p", "answer": "5", "seed": 1, "response": "\\boxed{5}"}
    folder = _grade_folder(tmp_path, [{**row, "example_id": 6}, {**row, "example_id": 6.7, "seed": 2},
                                      {**row, "example_id": True, "seed": 3}])
    assert run_cli("grade", folder, cwd=tmp_path).returncode == 0
    graded = json.loads((folder / "grading_results.json").read_text())
    result = next(iter(graded["files"].values()))
    assert result["responses"] == 1 and len(result["malformed_lines"]) == 2, result


def test_an_empty_generation_file_is_not_scored_zero(tmp_path) -> None:
    folder = _grade_folder(tmp_path, [])
    run_cli("grade", folder, cwd=tmp_path)
    graded = _strict_json((folder / "grading_results.json").read_text())
    result = next(iter(graded["files"].values()))
    assert result["mean_score"] is None and "nothing to score" in result["not_scored"]


# --- 7. a model folder without tokenizer files -----------------------------------------------------


def test_train_on_a_model_folder_without_a_tokenizer_is_one_line(tiny_model, tmp_path) -> None:
    import shutil

    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, weights_only / name)
    result = run_cli("train", f"model={weights_only}", "total_steps=1", "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(result, str(weights_only), "tokenizer")


# --- 5. a grading result that no longer describes its files is refused ----------------------------


def test_compare_refuses_a_grading_result_older_than_its_generation_file(tmp_path) -> None:
    def rows(right: bool) -> list[dict]:
        return [{"example_id": i, "prompt": f"What is {i}+1?", "answer": str(i + 1), "seed": s,
                 "response": f"\\boxed{{{i + 1 if right else 0}}}"} for i in range(6) for s in (1, 2)]

    folders = {}
    for name in ("a", "b"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "aime24_t0.7_p0.9_n2-MNT8.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows(right=False)))
        assert run_cli("grade", folders[name], cwd=tmp_path).returncode == 0
    assert run_cli("compare", folders["a"], folders["b"], cwd=tmp_path).returncode in (0, 1)
    regenerated = folders["b"] / "aime24_t0.7_p0.9_n2-MNT8.jsonl"
    regenerated.write_text("".join(json.dumps(r) + "\n" for r in rows(right=True)))  # new samples, old grades
    assert_one_line_error(run_cli("compare", folders["a"], folders["b"], cwd=tmp_path), "stale", str(regenerated))


def test_plot_onto_an_existing_folder_is_refused_not_written_beside_it(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(_lines(1, 2, 3))
    target = tmp_path / "figures"
    target.mkdir()
    assert_one_line_error(run_cli("plot", run, "-o", target, cwd=tmp_path), "is a folder")
    assert not (tmp_path / "figures.png").exists()


# --- 6. what a SIGKILLed writer left aside is deleted at the next start ---------------------------


def killed_writer_leftover(target: Path, folder: bool = False) -> Path:
    """What a writer killed by SIGKILL between writing aside and renaming leaves: a child process
    starts :func:`justrl.io.atomic_write_text` (or stages a checkpoint folder) and is SIGKILLed at
    the fsync that comes before the rename. Returns the leftover (named with the dead child's pid)."""
    stage = ("p = io.staging_path(sys.argv[1]); p.mkdir(); (p / 'model.safetensors').write_bytes(b'half'); "
             "os.fsync(0)" if folder else "io.atomic_write_text(sys.argv[1], 'half a file')")
    code = ("import os, signal, sys\nfrom justrl import io\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n" + stage)
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], env=ENV)
    assert child.wait(timeout=120) == -signal.SIGKILL
    leftover = (target.with_name(f".tmp-{target.name}-{child.pid}") if folder
                else target.with_name(f".{target.name}.{child.pid}.tmp"))
    assert leftover.exists() and not target.exists()
    return leftover


def test_a_killed_writers_leftovers_in_a_run_folder_are_deleted_when_training_starts(recipe_file,
                                                                                  tmp_path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    leftovers = [killed_writer_leftover(run_dir / "recipe.yaml"),
                 killed_writer_leftover(run_dir / "checkpoints" / "step_3", folder=True)]
    live = run_dir / f".notes.txt.{os.getpid()}.tmp"  # a live writer's: never touched
    live.write_text("being written")
    result = run_cli("train", "--recipe", recipe_file, "--run-dir", run_dir, "total_steps=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in leftovers) and live.exists()
    assert "left by a writer that was killed" in (run_dir / "train.log").read_text()


def test_a_killed_grades_leftover_is_deleted_by_the_next_grade(tmp_path) -> None:
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "aime24_t0.7_p0.9_n1-MNT8.jsonl").write_text("".join(
        json.dumps({"example_id": i, "prompt": "p", "answer": "1", "seed": 0, "response": "\\boxed{1}"}) + "\n"
        for i in range(3)))
    leftover = killed_writer_leftover(folder / "grading_results.json")
    foreign = folder / ".other.123.tmp"  # not a name grade writes: not its to delete
    foreign.write_text("someone else's")
    assert run_cli("grade", folder, cwd=tmp_path).returncode == 0
    assert not leftover.exists() and foreign.exists() and (folder / "grading_results.json").is_file()


# --- 7. a full disk and a read-only one, for real (a tmpfs in a private mount namespace) ----------


def in_small_disk(tmp_path: Path, size: str, command: str, read_only_after: str | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a shell line; ``DISK`` in it is the mount point) with a ``size`` tmpfs
    mounted at ``tmp_path/disk`` in a private user and mount namespace (``unshare -rm``), so no
    privilege is needed and nothing outside sees it; ``read_only_after``: a shell line run on the
    fresh disk before it is remounted read-only."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no unprivileged mount namespace here (unshare -rm): the platform, not the install")
    disk = tmp_path / "disk"
    disk.mkdir()
    steps = [f"mount -t tmpfs -o size={size} none {disk}"]
    if read_only_after is not None:
        steps += [read_only_after.replace("DISK", str(disk)), f"mount -o remount,ro {disk}"]
    script = " && ".join([*steps, "exec " + command.replace("DISK", str(disk))])
    return subprocess.run([unshare, "-rm", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=600)


def _cli_line(*args: object) -> str:
    return " ".join(shlex.quote(str(a)) for a in [*CLI, *args])


@pytest.mark.skip_ok
def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_staging_folder(recipe_file, tmp_path) -> None:
    result = in_small_disk(tmp_path, "160k", _cli_line("train", "--recipe", recipe_file, "--run-dir", "DISK/run",
                                                       "total_steps=1"))
    assert_one_line_error(result, "No space left on device", str(tmp_path / "disk" / "run"))
    assert "inline_container" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skip_ok
def test_a_read_only_disk_is_one_line_naming_the_path(recipe_file, tmp_path) -> None:
    source = _problems_file(tmp_path / "p.jsonl")
    export = in_small_disk(tmp_path, "1m", _cli_line("data", "export", source, "--out", "DISK/out/e.parquet"),
                           read_only_after="mkdir DISK/out")
    assert_one_line_error(export, "Read-only file system", str(tmp_path / "disk" / "out"))
    shutil.rmtree(tmp_path / "disk")
    train = in_small_disk(tmp_path, "1m", _cli_line("train", "--recipe", recipe_file, "--run-dir", "DISK/run"),
                          read_only_after="true")
    assert_one_line_error(train, "Read-only file system", str(tmp_path / "disk" / "run"))


# --- 5 (continued). the card and compare's report refuse stale grades too -------------------------


def _graded_eval_folder(folder: Path, right: bool) -> Path:
    folder.mkdir()
    (folder / "aime24_t0.7_p0.9_n1-MNT8.jsonl").write_text("".join(
        json.dumps({"example_id": i, "prompt": "p", "answer": "1", "seed": 0,
                    "response": "\\boxed{1}" if right else "\\boxed{2}"}) + "\n" for i in range(3)))
    assert run_cli("grade", folder, cwd=folder.parent).returncode == 0
    (folder / "summary.json").write_text(json.dumps({"benchmarks": []}))  # as eval writes it, in short
    return folder


def test_card_and_compare_report_refuse_an_evaluation_graded_before_its_files_changed(tiny_model,
                                                                                       tmp_path) -> None:
    base, new = _graded_eval_folder(tmp_path / "a", right=False), _graded_eval_folder(tmp_path / "b", right=False)
    (new / "aime24_t0.7_p0.9_n1-MNT8.jsonl").write_text("".join(  # new samples, old grades
        json.dumps({"example_id": i, "prompt": "p", "answer": "1", "seed": 0, "response": "\\boxed{1}"}) + "\n"
        for i in range(3)))
    model = tmp_path / "policy"
    shutil.copytree(tiny_model, model)
    assert_one_line_error(run_cli("card", model, "--eval", new, cwd=tmp_path), "stale", "aime24")
    assert not (model / "README.md").exists()
    assert run_cli("card", model, "--eval", base, cwd=tmp_path).returncode == 0
    assert_one_line_error(run_cli("compare", base, new, "-o", tmp_path / "report", cwd=tmp_path), "stale")
    assert not list(tmp_path.glob("report*"))


# --- 1 (continued). outside training's loop SIGTERM interrupts any command as Ctrl-C does ------------


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (``SigCgt`` in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sigterm_during_a_command_is_one_line_and_the_signals_exit_code(tmp_path) -> None:
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "aime24_t0.7_p0.9_n8-MNT8.jsonl").write_text("".join(
        json.dumps({"example_id": i, "prompt": "p", "answer": str(i), "seed": s,
                    "response": f"so the sum is \\boxed{{{i + s}}}"}) + "\n" for i in range(5000) for s in range(8)))
    proc = subprocess.Popen([*CLI, "grade", folder], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _catches(proc.pid, signal.SIGTERM):  # the command has begun (its handler is in)
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "justrl grade: interrupted (SIGTERM)"
    assert _leftovers(folder) == []
