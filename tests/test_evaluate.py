"""The evaluation harness: protocol defaults, sampling plan, resumable output, CIs, report, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from justrl import benchmarks as B
from justrl import evaluate as E
from justrl.generation import Completion

RELEASE_KEYS = {"example_id", "prompt", "answer", "seed", "response"}


def _config(model: Path, data: Path, out: Path, benchmarks: str, *overrides: str) -> E.EvalConfig:
    config = E.EvalConfig(model=str(model), benchmarks=[benchmarks], data_dir=str(data), out=str(out))
    return E.apply_overrides(config, ["bootstrap=500", *overrides])


def _keys(path: Path) -> Counter:
    return Counter((rec["example_id"], rec["seed"]) for rec in E.read_samples(path))


# --- the protocol ---------------------------------------------------------------------------------


def test_defaults_are_the_papers_protocol():
    config = E.EvalConfig(model="m")
    assert E.EVAL_PROMPT.format(problem="What is $1+1$?") == (
        "What is $1+1$? Please reason step by step, and put your final answer within \\boxed{}.")
    assert (config.prompt, config.temperature, config.top_p, config.max_tokens) == (E.EVAL_PROMPT, 0.7, 0.9, 31_744)
    assert config.n is None and config.benchmarks == ["all"] and config.backend == "hf"
    assert config.grader == "justrl-eval"
    assert config.samples_per_call() == 32 and E.EvalConfig(model="m", backend="vllm").samples_per_call() == 512
    params = E.sampling_params(config)
    assert (params.temperature, params.top_p, params.max_new_tokens) == (0.7, 0.9, 31_744)


def test_release_file_names():
    name = E.output_name("aime24", 0.7, 0.9, 32, 31_744)
    assert name == "aime24_t0.7_p0.9_n32-MNT31744.jsonl"
    assert E.output_name("math-500", 1, 1.0, 4, 512) == "math-500_t1.0_p1.0_n4-MNT512.jsonl"
    # the release grader's pattern reads the settings back
    m = re.search(r"_t(?P<temperature>[\d.]+)_p(?P<top_p>[\d.]+)_n(?P<n>\d+)-MNT(?P<max_tokens>\d+)", name)
    assert m and m.groupdict() == {"temperature": "0.7", "top_p": "0.9", "n": "32", "max_tokens": "31744"}


def test_overrides_are_typed_recorded_and_checked():
    config = E.apply_overrides(E.EvalConfig(model="m"), [
        "n=2", "temperature=0.6", "top_p=1", "max_tokens=1_024", "batch_size=8", "seed=3", "limit=none",
        "enforce_eager=true", "prompt={problem}\\nAnswer in \\\\boxed{{}}."])
    assert (config.n, config.temperature, config.top_p, config.max_tokens, config.batch_size, config.seed) == (
        2, 0.6, 1.0, 1024, 8, 3)
    assert config.limit is None and config.enforce_eager is True
    assert config.prompt == "{problem}\nAnswer in \\boxed{{}}."
    assert config.to_dict()["temperature"] == 0.6
    with pytest.raises(E.EvalError, match="unknown setting 'temprature'"):
        E.apply_overrides(config, ["temprature=1"])
    with pytest.raises(E.EvalError, match="unknown setting 'model'"):
        E.apply_overrides(config, ["model=other"])  # a flag, not a key=value setting
    with pytest.raises(E.EvalError, match="n: expected an integer"):
        E.apply_overrides(config, ["n=two"])
    with pytest.raises(E.EvalError, match="top_p must be in"):
        E.apply_overrides(config, ["top_p=0"])
    with pytest.raises(E.EvalError, match="not of the form"):
        E.apply_overrides(config, ["n"])
    with pytest.raises(E.EvalError, match="family must be one of deepseek-1.5b, nemotron-1.5b, all or none"):
        E.apply_overrides(config, ["family=qwen"])
    assert E.apply_overrides(config, ["family=nemotron-1.5b"]).family == "nemotron-1.5b"


def test_sample_seeds_are_distinct_reproducible_and_per_benchmark():
    seeds = E.sample_seeds(0, "aime24", 32)
    assert len(set(seeds)) == 32 and all(0 <= s < 2**31 - 1 for s in seeds)
    assert E.sample_seeds(0, "aime24", 32) == seeds
    assert E.sample_seeds(0, "aime24", 4) == seeds[:4]  # a smaller n keeps a prefix
    assert E.sample_seeds(0, "aime25", 32) != seeds and E.sample_seeds(1, "aime24", 32) != seeds


def test_plan_sends_each_problem_as_one_user_turn_with_every_seed(tiny_model, data_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    file = B.locate([B.get("AIME24")], data_dir)["AIME24"]
    config = E.EvalConfig(model=str(tiny_model), limit=3)
    plan = E.plan_benchmark(file, config, tmp_path, lambda m: E.chat_text(tokenizer, m))
    assert plan.samples_per_problem == 32 and plan.path.name == "aime24_t0.7_p0.9_n32-MNT31744.jsonl"
    assert len(plan.requests) == 3 * 32
    assert Counter(r.example_id for r in plan.requests) == {0: 32, 1: 32, 2: 32}
    assert [r.seed for r in plan.requests[:32]] == plan.seeds == E.sample_seeds(0, "aime24", 32)
    first = plan.requests[0]
    problem = B.load_problems(file)[0]
    assert first.prompt == problem.prompt + " Please reason step by step, and put your final answer within \\boxed{}."
    assert first.text == "<|user|>" + first.prompt + "<|assistant|>"  # the toy chat template
    assert first.answer == "\\boxed{204}"
    assert set(first.record("r")) == RELEASE_KEYS


def test_a_tokenizer_without_chat_template_is_refused():
    class NoTemplate:
        chat_template = None

    with pytest.raises(E.EvalError, match="no chat template"):
        E.chat_text(NoTemplate(), "x")


# --- the output files -----------------------------------------------------------------------------


def _line(pid: int, seed: int, response: str = "r") -> str:
    return json.dumps({"example_id": pid, "prompt": "p", "answer": "a", "seed": seed, "response": response}) + "\n"


def test_truncated_last_line_is_dropped_and_never_counted(tmp_path):
    path = tmp_path / "x.jsonl"
    whole = _line(0, 1) + _line(0, 2)
    path.write_text(whole + _line(1, 1)[:25])
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1), (0, 2)} and f.dropped_bytes == 25
        assert path.read_text() == whole
        assert f.append({"example_id": 1, "prompt": "p", "answer": "a", "seed": 1, "response": "new"})
        assert not f.append({"example_id": 0, "prompt": "p", "answer": "a", "seed": 2, "response": "dup"})
    assert _keys(path) == Counter({(0, 1): 1, (0, 2): 1, (1, 1): 1})
    assert path.read_text().endswith('"response": "new"}\n')


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(_line(0, 1) + _line(0, 2).rstrip("\n"))
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1), (0, 2)} and f.dropped_bytes == 0
        f.append(json.loads(_line(3, 3)))
    assert _keys(path) == Counter({(0, 1): 1, (0, 2): 1, (3, 3): 1})


def test_malformed_and_duplicate_lines_are_reported(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(_line(0, 1) + "not json\n" + '{"example_id": 5}\n' + _line(0, 1))
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1)} and f.malformed_lines == [2, 3] and f.duplicate_lines == 1


# --- confidence intervals -------------------------------------------------------------------------


def test_ci_of_all_correct_and_all_wrong_problems_is_a_point():
    assert E.bootstrap_ci([1.0] * 30) == (1.0, 1.0)
    assert E.bootstrap_ci([0.0] * 30) == (0.0, 0.0)
    assert E.bootstrap_average_ci([[1.0] * 30, [0.0] * 40]) == (0.5, 0.5)


def test_ci_of_half_solved_problems_matches_the_normal_approximation_and_shrinks():
    small = E.bootstrap_ci([1.0, 0.0] * 15)
    large = E.bootstrap_ci([1.0, 0.0] * 150)
    for (lo, hi), problems in ((small, 30), (large, 300)):
        half_width = 1.96 * (0.25 / problems) ** 0.5
        assert lo < 0.5 < hi
        assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.15)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 2.5  # ~ 1/sqrt(10)


def test_samples_of_a_problem_stay_together():
    # 30 problems, 4 samples each, every problem solved 2 times out of 4: the mean is 0.5 and no
    # resample of problems changes it (resampling single samples would give a wide interval).
    records = [{"example_id": p, "seed": s} for p in range(30) for s in range(4)]
    correct = [s % 2 == 0 for p in range(30) for s in range(4)]
    per_problem = E.per_problem_scores(records, correct)
    assert list(per_problem.values()) == [0.5] * 30
    assert E.bootstrap_ci(list(per_problem.values())) == (0.5, 0.5)
    # the same 60 correct samples concentrated on 15 problems: wide
    correct = [p < 15 for p in range(30) for s in range(4)]
    lo, hi = E.bootstrap_ci(list(E.per_problem_scores(records, correct).values()))
    assert hi - lo > 0.3


def test_average_ci_combines_independent_benchmark_resamples():
    parts = [[1.0, 0.0] * 15, [1.0, 0.0, 0.0] * 10, [0.75, 0.25] * 20]
    lo, hi = E.bootstrap_average_ci(parts)
    average = sum(sum(p) / len(p) for p in parts) / 3
    assert lo < average < hi
    widths = [E.bootstrap_ci(p)[1] - E.bootstrap_ci(p)[0] for p in parts]
    # the mean of three independent estimates: its spread is sqrt(sum of variances) / 3
    assert hi - lo == pytest.approx(sum(w * w for w in widths) ** 0.5 / 3, rel=0.15)
    assert hi - lo < max(widths)


def _score(name: str, per_problem: list[float]) -> E.BenchmarkScore:
    return E.score_benchmark(name, 4, Path(f"{name}.jsonl"), dict(enumerate(per_problem)),
                             samples=4 * len(per_problem), resamples=2000, seed=0)


def test_report_says_which_published_rows_lie_outside_the_interval(tmp_path):
    aime = _score("AIME24", [1.0, 0.0] * 15)  # 50% +- ~18
    math = _score("MATH-500", [1.0] * 9 + [0.0])  # 90%
    summary = E.summarize("hbx/JustRL-DeepSeek-1.5B", [aime, math], family="deepseek-1.5b",
                          settings=E.EvalConfig(model="m").to_dict(), resamples=2000)
    assert [r.model for r in summary.published][-1] == "JustRL-DeepSeek-1.5B"
    justrl = summary.comparisons(summary.published[-1])
    assert justrl["AIME24"].published == 52.60 and justrl["AIME24"].outside_ci is False
    assert justrl["AIME24"].difference == pytest.approx(50.0 - 52.60)
    distill = summary.comparisons(summary.published[0])
    assert distill["AIME24"].published == 29.90 and distill["AIME24"].outside_ci is True
    assert distill["average"].published == pytest.approx((29.90 + 84.90) / 2)
    brorl = summary.comparisons(next(r for r in summary.published if r.model == "BroRL"))
    assert brorl["AIME24"].published == 57.50 and brorl["average"].published == pytest.approx((57.50 + 92.14) / 2)
    text = E.render_report(summary)
    assert "| AIME24 | 4 | 30 | 50.00 | [" in text
    assert "29.90 (+20.1) †" in text and "52.60 (-2.6) |" in text
    assert "**average**" in text and "temperature 0.7, top-p 0.9, max new tokens 31744" in text
    png = E.plot_scores(summary, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- whole runs on a tiny local model -------------------------------------------------------------


def test_eval_writes_release_files_grades_reports_and_resumes(tiny_model, data_dir, tmp_path):
    out = tmp_path / "out"
    config = _config(tiny_model, data_dir, out, "MATH-500,AIME24", "n=2", "limit=3", "max_tokens=8")
    result = E.run(config)
    assert result.generated == 12
    names = sorted(p.name for p in out.glob("*.jsonl"))
    assert names == ["aime24_t0.7_p0.9_n2-MNT8.jsonl", "math-500_t0.7_p0.9_n2-MNT8.jsonl"]
    for path in out.glob("*.jsonl"):
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
    assert recorded["benchmarks"]["AIME24"]["seeds"] == E.sample_seeds(0, "aime24", 2)
    summary = json.loads((out / E.SUMMARY_FILE).read_text())
    assert [b["name"] for b in summary["benchmarks"]] == ["AIME24", "MATH-500"]

    again = E.run(config)
    assert again.generated == 0
    assert all(_keys(p) == _keys(result.files[n]) for n, p in again.files.items())

    with pytest.raises(E.EvalError, match="unknown grader 'strict'"):
        E.run(E.apply_overrides(config, ["grader=strict"]))
    with pytest.raises(E.EvalError, match="holds an evaluation with model="):
        E.run(E.EvalConfig(model=str(tmp_path), benchmarks=["AIME24"], data_dir=str(data_dir), out=str(out)))


def test_a_file_cut_mid_line_is_repaired_and_completed(tiny_model, data_dir, tmp_path):
    out = tmp_path / "out"
    config = _config(tiny_model, data_dir, out, "AIME25", "n=2", "limit=3", "max_tokens=4")
    path = E.run(config).files["AIME25"]
    full = _keys(path)
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 30])  # last line cut after 30 bytes
    assert len(E.read_samples(path)) == 5
    assert E.run(config).generated == 1
    assert _keys(path) == full and set(full.values()) == {1}


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
    """``--judge-model``: the judge (loaded by ``justrl.judge``) sees only answers the rule stages
    rejected, its grades count, and the report says which stage settled what."""
    from justrl import judge as judge_mod

    asked: list[str] = []

    class Judge:
        name = "stand-in-judge"

        def judge(self, questions, responses, ground_truths):
            asked.extend(responses)
            return [True] * len(responses)

    loaded: list[tuple[str, dict]] = []
    monkeypatch.setattr(judge_mod, "load_judge", lambda model, **kw: loaded.append((model, kw)) or Judge())
    config = _config(tiny_model, data_dir, tmp_path / "j", "AIME24", "n=2", "limit=3", "max_tokens=4", "device=cpu")
    result = E.run(dataclasses.replace(config, judge_model="judge/path"))
    assert loaded == [("judge/path", {"device": "cpu"})]
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
        f"{b.task}_t0.7_p0.9_n2-MNT2.jsonl" for b in B.BENCHMARKS)
    for bench in B.BENCHMARKS:
        assert _keys(result.files[bench.name]) == Counter(
            {(p, s): 1 for p in range(8) for s in E.sample_seeds(0, bench.task, 2)})
    assert [s.name for s in result.summary.scores] == B.names()
    grades = json.loads((out / E.RESULTS_FILE).read_text())
    assert sorted(grades["files"]) == sorted(p.name for p in out.glob("*.jsonl"))
    report = (out / E.REPORT_FILE).read_text()
    assert all(f"| {b.name} | 2 | 8 |" in report for b in B.BENCHMARKS) and "**average**" in report
    assert "JustRL-Nemotron-1.5B" in report  # unknown family: every published row is shown
    assert (out / E.CHART_FILE).stat().st_size > 10_000


def test_cli_reports_missing_data_in_one_line(tiny_model, tmp_path, capsys):
    from justrl.cli import main

    code = main(["eval", "--model", str(tiny_model), "--data-dir", str(tmp_path), "--benchmarks", "AIME24",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("justrl eval: no benchmark data for AIME24") and err.count("\n") == 1
