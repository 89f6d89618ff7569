"""Whole evaluations on a tiny local model: release files, grading, report, resuming, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from justrl import evaluate as E
from justrl.data import benchmarks as B
from justrl.generate.hf import Completion

RELEASE_KEYS = {"example_id", "prompt", "answer", "seed", "response"}


def _config(model: Path, data: Path, out: Path, benchmarks: str, *overrides: str) -> E.EvalConfig:
    config = E.EvalConfig(model=str(model), benchmarks=[benchmarks], data_dir=str(data), out=str(out))
    return E.apply_overrides(config, ["bootstrap=500", *overrides])


def _keys(path: Path) -> Counter:
    return Counter((rec["example_id"], rec["seed"]) for rec in E.read_samples(path))


def test_eval_writes_release_files_grades_reports_and_resumes(tiny_model, data_dir, tmp_path):
    out = tmp_path / "out"
    config = _config(tiny_model, data_dir, out, "MATH-500,AIME24", "n=2", "limit=3", "max_tokens=8")
    result = E.run(config)
    assert result.generated == 12
    names = sorted(p.name for p in out.glob("*.jsonl"))
    assert names == ["aime24_t0.7_p0.9_n2-MNT8.jsonl", "aime24_t0.7_p0.9_n2-MNT8_verdicts.jsonl",
                     "math-500_t0.7_p0.9_n2-MNT8.jsonl", "math-500_t0.7_p0.9_n2-MNT8_verdicts.jsonl"]
    for path in result.files.values():
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == 6 and all(set(rec) == RELEASE_KEYS for rec in lines)
        assert _keys(path) == Counter({(p, s): 1 for p in range(3) for s in E.sample_seeds(0, path.name.split("_")[0], 2)})
    grades = json.loads((out / E.RESULTS_FILE).read_text())
    assert grades  # written by the grader
    report = (out / E.REPORT_FILE).read_text()
    assert "| MATH-500 | 2 | 3 |" in report and "| AIME24 | 2 | 3 |" in report
    assert (out / E.CHART_FILE).read_bytes()[:4] == b"\x89PNG"
    recorded = json.loads((out / E.CONFIG_FILE).read_text())
    assert recorded["settings"]["max_tokens"] == 8 and recorded["settings"]["temperature"] == 0.7
    assert [b["name"] for b in recorded["benchmarks"]] == ["AIME24", "MATH-500"]
    assert recorded["benchmarks"][0]["seeds"] == E.sample_seeds(0, "aime24", 2)
    assert recorded["settings"]["benchmarks"] == ["AIME24", "MATH-500"] and recorded["weights"]["sha256"]
    import torch
    import transformers

    assert recorded["environment"]["packages"]["torch"] == torch.__version__.split("+")[0] or \
        recorded["environment"]["packages"]["torch"] == torch.__version__
    assert recorded["environment"]["packages"]["transformers"] == transformers.__version__
    assert "vllm" in recorded["environment"]["packages"] and recorded["environment"]["device"] == "cpu"
    assert recorded["environments"] == [recorded["environment"]]
    summary = json.loads((out / E.SUMMARY_FILE).read_text())
    assert [b["name"] for b in summary["benchmarks"]] == ["AIME24", "MATH-500"]

    again = E.run(config)
    assert again.generated == 0
    assert all(_keys(p) == _keys(result.files[n]) for n, p in again.files.items())

    with pytest.raises(E.EvalError, match="unknown grader 'strict'"):
        E.run(E.apply_overrides(config, ["grader=strict"]))
    with pytest.raises(E.EvalError, match="holds another evaluation \\(temperature=0.7 there, 0.6 now"):
        E.run(E.apply_overrides(config, ["temperature=0.6"]))
    assert json.loads((out / E.CONFIG_FILE).read_text()) == recorded  # nothing overwritten


def test_resume_follows_the_weights_not_the_path(tiny_model, data_dir, tmp_path):
    """The same weights by a symlink resume; new weights under the same path are refused; a
    smaller limit scores exactly the problems it names."""
    import shutil

    model = tmp_path / "run" / "final"
    shutil.copytree(tiny_model, model)
    out = tmp_path / "out"
    first = E.run(_config(model, data_dir, out, "AIME24", "n=1", "limit=3", "max_tokens=2"))
    assert first.generated == 3
    (tmp_path / "link").symlink_to(model)
    smaller = E.run(_config(tmp_path / "link", data_dir, out, "AIME24", "n=1", "limit=2", "max_tokens=2"))
    assert smaller.generated == 0 and smaller.summary.scores[0].problems == 2
    graded = json.loads((out / E.RESULTS_FILE).read_text())["files"]
    assert [v["responses"] for v in graded.values()] == [2]
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight: another policy under the same path
    weights.write_bytes(bytes(data))
    with pytest.raises(E.EvalError, match="other weights"):
        E.run(_config(model, data_dir, out, "AIME24", "n=1", "limit=3", "max_tokens=2"))
    assert E.EvalConfig(model=str(model)).out_dir() == Path("runs/eval/run-final")


def test_one_writer_per_folder_and_no_run_folders(tiny_model, data_dir, tmp_path):
    from justrl.errors import ConfigError, FolderInUseError
    from justrl.io import FolderLock

    out = tmp_path / "out"
    with FolderLock(out), pytest.raises(FolderInUseError, match=f"pid {os.getpid()}"):
        E.run(_config(tiny_model, data_dir, out, "AIME24", "n=1", "limit=1", "max_tokens=2"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text("name: toy\n")
    with pytest.raises(ConfigError, match="a training run's folder \\(it has recipe.yaml\\)"):
        E.run(_config(tiny_model, data_dir, tmp_path / "run", "AIME24", "n=1", "limit=1", "max_tokens=2"))


def test_a_file_cut_mid_line_is_repaired_and_completed(tiny_model, data_dir, tmp_path, caplog):
    out = tmp_path / "out"
    config = _config(tiny_model, data_dir, out, "AIME25", "n=2", "limit=3", "max_tokens=4")
    path = E.run(config).files["AIME25"]
    full = _keys(path)
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 30])  # last line cut after 30 bytes
    assert len(E.read_samples(path)) == 5
    caplog.clear()
    assert E.run(config).generated == 1
    assert _keys(path) == full and set(full.values()) == {1}
    assert "AIME25: dropped a partial last line (29 bytes)" in caplog.text  # 30 with its newline


def test_known_scores_through_grading(data_dir, tiny_model, tmp_path):
    """A stand-in backend that answers even-numbered problems right and odd ones wrong scores
    exactly 50%; it also sees the paper's sampling settings and every (problem, seed) once."""
    seen: list[tuple[str, int]] = []
    params_seen = set()
    truths = {p.prompt: p.ground_truth for p in B.load_problems(B.locate([B.get("AMC23")], data_dir)["AMC23"])}
    order = list(truths)

    class Oracle:
        def generate(self, prompts, params, seeds=None):
            params_seen.add((params.temperature, params.top_p, params.max_new_tokens))
            out = []
            for text, seed in zip(prompts, seeds):
                seen.append((text, seed))
                problem = next(p for p in truths if p in text)
                answer = truths[problem] if order.index(problem) % 2 == 0 else "-1"
                out.append(Completion(f"So the answer is \\boxed{{{answer}}}.", [1, 2, 3], [], "stop"))
            return out

    config = _config(tiny_model, data_dir, tmp_path / "o", "AMC23", "limit=6", "n=4")
    result = E.run(config, backend=Oracle)
    assert params_seen == {(0.7, 0.9, 31_744)}
    assert len(seen) == 24 and len(set(seen)) == 24
    [score] = result.summary.scores
    assert score.name == "AMC23" and score.problems == 6 and score.samples_per_problem == 4
    assert score.score == 50.0 and score.per_problem == [1.0, 0.0] * 3
    assert score.ci_low < 50.0 < score.ci_high


def test_judge_model_grades_what_the_rules_reject(tiny_model, data_dir, tmp_path, monkeypatch):
    """``--judge-model``: the judge (loaded by ``justrl.evaluate.judge``) sees only answers the rule stages
    rejected, its grades count, and the report says which stage settled what."""
    from justrl.evaluate import judge as judge_mod

    asked: list[str] = []

    class Judge:
        name = "stand-in-judge"

        def judge(self, questions, responses, ground_truths):
            asked.extend(responses)
            return [True] * len(responses)

    loaded: list[tuple[str, dict]] = []
    monkeypatch.setattr(judge_mod, "load_judge", lambda model, **kw: loaded.append((model, kw)) or Judge())
    config = _config(tiny_model, data_dir, tmp_path / "j", "AIME24", "n=2", "limit=3", "max_tokens=4", "device=cpu")
    result = E.run(dataclasses.replace(config, judge_model=str(tiny_model)))
    [(model, options)] = loaded
    assert model == str(tiny_model) and (options["engine"].backend, options["engine"].device) == ("hf", "cpu")
    assert len(asked) == 6 and result.summary.scores[0].score == 100.0
    report = (tmp_path / "j" / E.REPORT_FILE).read_text()
    assert "with judge `stand-in-judge`" in report and "right by judge" in report
    assert "| AIME24 | 6 | 0 | 0 | 6 | 0 |" in report


def test_kill_midway_then_rerun_yields_each_pair_once(tiny_model, data_dir, tmp_path):
    """SIGKILL a real `justrl eval` process while it writes, rerun: the same (problem, seed) set,
    each exactly once."""
    out = tmp_path / "out"
    args = ["--model", str(tiny_model), "--data-dir", str(data_dir), "--benchmarks", "MATH-500",
            "--out", str(out), "n=2", "limit=40", "max_tokens=16", "batch_size=1", "bootstrap=500"]
    proc = subprocess.Popen([sys.executable, "-m", "justrl.cli", "eval", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = out / "math-500_t0.7_p0.9_n2-MNT16.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if path.is_file() and path.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the evaluation ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = len(E.read_samples(path))
    assert 5 <= before < 80
    config = _config(tiny_model, data_dir, out, "MATH-500", "n=2", "limit=40", "max_tokens=16", "batch_size=32")
    result = E.run(config)
    expected = {(p, s) for p in range(40) for s in E.sample_seeds(0, "math-500", 2)}
    keys = _keys(path)
    assert set(keys) == expected and set(keys.values()) == {1}
    assert result.generated == 80 - before


def test_all_nine_benchmarks(tiny_model, data_dir, tmp_path):
    """``--benchmarks all``: nine release-named files, graded, reported (the first 8 problems of
    each keep it fast; the registry tests read every row)."""
    out = tmp_path / "all"
    result = E.run(_config(tiny_model, data_dir, out, "all", "n=2", "max_tokens=2", "limit=8"))
    assert result.generated == 9 * 8 * 2
    assert sorted(p.name for p in out.glob("*.jsonl")) == sorted(
        f"{b.task}_t0.7_p0.9_n2-MNT2{suffix}.jsonl" for b in B.BENCHMARKS for suffix in ("", "_verdicts"))
    for bench in B.BENCHMARKS:
        assert _keys(result.files[bench.name]) == Counter(
            {(p, s): 1 for p in range(8) for s in E.sample_seeds(0, bench.task, 2)})
    assert [s.name for s in result.summary.scores] == B.names()
    grades = json.loads((out / E.RESULTS_FILE).read_text())
    assert sorted(grades["files"]) == sorted(p.name for p in out.glob("*.jsonl") if not p.name.endswith("_verdicts.jsonl"))
    report = (out / E.REPORT_FILE).read_text()
    assert all(f"| {b.name} | 2 | 8 |" in report for b in B.BENCHMARKS) and "**average**" in report
    assert "JustRL-Nemotron-1.5B" in report  # unknown family: every published row is shown
    assert (out / E.CHART_FILE).stat().st_size > 10_000


def test_cli_prints_the_score_table_and_what_it_wrote(tiny_model, data_dir, tmp_path, capsys):
    from justrl.cli import main

    out = tmp_path / "o"
    code = main(["eval", "--model", str(tiny_model), "--data-dir", str(data_dir), "--benchmarks", "AIME24",
                 "--out", str(out), "n=2", "limit=2", "max_tokens=2", "bootstrap=100", "family=none"])
    captured = capsys.readouterr()
    assert code == 0
    assert "avg@N (%) with 95% bootstrap CI" in captured.out and "AIME24" in captured.out
    assert f"wrote {out / E.REPORT_FILE}, {out / E.CHART_FILE} and {out / E.RESULTS_FILE}" in captured.out
    assert "avg@N" not in captured.err  # messages and bars on stderr, the result on stdout


def test_cli_reports_missing_data_in_one_line(tiny_model, tmp_path, capsys):
    from justrl.cli import main

    code = main(["eval", "--model", str(tiny_model), "--data-dir", str(tmp_path), "--benchmarks", "AIME24",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("justrl eval: no benchmark data for AIME24") and err.count("\n") == 1


def test_verdicts_beside_each_file_and_lm_eval_files_read_back(data_dir, tiny_model, tmp_path):
    """Every sample's verdict sits beside its generation file; --format lm-eval writes lm-eval's
    results_<date>.json and samples_<task>_<date>.jsonl, and their numbers are the report's."""
    from justrl.evaluate import grading, lm_eval_format

    truths = {p.prompt: p.ground_truth for p in B.load_problems(B.locate([B.get("AMC23")], data_dir)["AMC23"])}
    order = list(truths)

    class Oracle:  # right on even problems for even seeds' first sample, else wrong, deterministic
        def generate(self, prompts, params, seeds=None):
            out = []
            for text in prompts:
                problem = next(p for p in truths if p in text)
                answer = truths[problem] if order.index(problem) % 2 == 0 else "-1"
                out.append(Completion(f"So \\boxed{{{answer}}}.", [1, 2], [], "stop"))
            return out

    out = tmp_path / "o"
    config = dataclasses.replace(_config(tiny_model, data_dir, out, "AMC23", "limit=4", "n=2"), format="lm-eval")
    result = E.run(config, backend=Oracle)
    generation = result.files["AMC23"]
    verdicts = grading.read_verdicts(generation)
    assert len(verdicts) == 8
    assert set(verdicts[0]) == {"example_id", "seed", "line", "answer", "extracted", "correct", "undecided",
                                "stage", "reason", "judged"}
    for v in verdicts:
        assert v["correct"] == (v["example_id"] % 2 == 0) and not v["undecided"] and v["stage"]
        assert v["extracted"] is not None

    results_path, samples_path = result.lm_eval_files
    assert results_path.parent == out / "lm-eval" / lm_eval_format.sanitized_model_name(str(tiny_model))
    assert results_path.name.startswith("results_") and samples_path.name.startswith("samples_amc23_")
    assert results_path.name[len("results_"):-len(".json")] == samples_path.name[len("samples_amc23_"):-len(".jsonl")]
    results = json.loads(results_path.read_text())
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config",
                "task_hashes", "model_name"):
        assert key in results, key
    assert results["results"]["amc23"]["avg@2,none"] == pytest.approx(result.summary.scores[0].score / 100) == 0.5
    assert results["results"]["amc23"]["avg@2_stderr,none"] > 0
    assert results["configs"]["amc23"]["repeats"] == 2 and results["n-shot"]["amc23"] == 0
    assert results["n-samples"]["amc23"] == {"original": 4, "effective": 4}
    lines = [json.loads(line) for line in samples_path.read_text().splitlines()]
    assert [d["doc_id"] for d in lines] == [0, 1, 2, 3]
    for d in lines:
        assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                "doc_hash", "prompt_hash", "target_hash"} <= set(d)
        assert len(d["resps"]) == 1 and len(d["resps"][0]) == 2 and d["metrics"] == ["avg@2"]
        assert d["avg@2"] == (1.0 if d["doc_id"] % 2 == 0 else 0.0)
        assert d["filtered_resps"][0][0] == (d["target"] if d["doc_id"] % 2 == 0 else "-1")
        assert d["arguments"]["gen_args_0"]["arg_1"]["temperature"] == 0.7


@pytest.mark.lm_eval
def test_lm_eval_reads_the_lm_eval_files_with_its_own_helpers(data_dir, tiny_model, tmp_path):
    """lm-evaluation-harness's own file helpers (and its results table, where pytablewriter is
    there) read what --format lm-eval wrote."""
    utils = pytest.importorskip("lm_eval.utils")

    class Right:
        def generate(self, prompts, params, seeds=None):
            return [Completion("\\boxed{1}", [1], [], "stop") for _ in prompts]

    out = tmp_path / "o"
    config = dataclasses.replace(_config(tiny_model, data_dir, out, "AIME24", "limit=2", "n=2"), format="lm-eval")
    result = E.run(config, backend=Right)
    folder = out / "lm-eval" / utils.sanitize_model_name(str(tiny_model))
    names = [str(p.relative_to(out)) for p in sorted(folder.iterdir())]
    [results_name] = utils.get_results_filenames(["/" + n for n in names])
    [samples_name] = utils.get_sample_results_filenames(["/" + n for n in names])
    assert utils.get_file_task_name(Path(samples_name).name) == "aime24"
    # (lm-eval's helper strips .jsonl only, so a results file keeps its .json)
    assert utils.get_file_datetime(Path(samples_name).name) + ".json" == utils.get_file_datetime(Path(results_name).name)
    assert (out / results_name.lstrip("/")) == result.lm_eval_files[0]
    try:
        import pytablewriter  # noqa: F401
    except ImportError:
        return
    table = utils.make_table(json.loads(result.lm_eval_files[0].read_text()))
    assert "AIME24" in table and "avg@2" in table
